"""Review 36 of d27004b: PostgresTable.update inserts a placeholder row for an absent key, and deletes it (in
the same transaction) when `change` returns UNCHANGED. What does a transaction queued behind that
uncommitted placeholder see once it is deleted?"""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

from bot.store.backend import UNCHANGED


def _hold_unchanged(table, entered: threading.Event, release: threading.Event, seen: list) -> None:
    def change(old):
        seen.append(old)
        entered.set()
        assert release.wait(10)
        return UNCHANGED

    seen.append(("returned", table.update("k", change)))


@pytest.mark.parametrize("second_op", ["update", "update_unchanged", "put", "claim", "delete"])
def test_a_writer_queued_on_the_placeholder_sees_an_absent_key(pg_stores, second_op):
    a, b = pg_stores
    ta, tb = a.table("sync"), b.table("sync")
    entered, release = threading.Event(), threading.Event()
    seen_a: list = []
    first = threading.Thread(target=_hold_unchanged, args=(ta, entered, release, seen_a))
    first.start()
    assert entered.wait(10)  # A holds its uncommitted placeholder row

    result: list = []
    errors: list = []
    seen_b: list = []

    def second():
        try:
            if second_op == "update":
                result.append(tb.update("k", lambda old: (seen_b.append(old), {"n": 1})[1]))
            elif second_op == "update_unchanged":
                result.append(tb.update("k", lambda old: (seen_b.append(old), UNCHANGED)[1]))
            elif second_op == "put":
                tb.put("k", {"n": 2})
            elif second_op == "claim":
                result.append(tb.claim("k", {"n": 3}))
            else:
                tb.delete("k")
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    other = threading.Thread(target=second)
    other.start()
    time.sleep(0.4)
    blocked = other.is_alive()
    release.set()
    first.join(10)
    other.join(10)
    assert not errors, errors
    assert seen_a == [None, ("returned", None)]
    if second_op == "update":
        assert blocked  # it waits on the unique index entry of A's uncommitted insert
        assert seen_b == [None] and result == [{"n": 1}] and tb.get("k") == {"n": 1}
    elif second_op == "update_unchanged":
        assert seen_b == [None] and result == [None] and "k" not in tb
    elif second_op == "put":
        assert tb.get("k") == {"n": 2}
    elif second_op == "claim":
        assert result == [True] and tb.get("k") == {"n": 3}
    else:
        assert "k" not in tb


def test_many_replicas_mixing_unchanged_and_increments_lose_nothing(pg_stores):
    a, b = pg_stores
    tables = [a.table("sync"), b.table("sync")]
    errors: list = []
    done = [0]
    lock = threading.Lock()

    def worker(i: int) -> None:
        table = tables[i % 2]
        for j in range(60):
            try:
                if (i + j) % 3 == 0:
                    table.update("k", lambda old: UNCHANGED)
                elif (i + j) % 11 == 0:
                    table.delete("k")
                    with lock:
                        done[0] = 0
                else:

                    def inc(old):
                        return {"n": (old or {}).get("n", 0) + 1} if isinstance(old, dict) or old is None else UNCHANGED

                    table.update("k", inc)
            except Exception as error:  # noqa: BLE001
                errors.append(repr(error))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:5]
    assert tables[0].get("k") is None or isinstance(tables[0].get("k"), dict)  # never a null row


def test_update_that_lost_its_row_between_insert_and_lock_still_says_it_wrote(pg_stores, monkeypatch):
    """Pre-existing (not d27004b): the INSERT ... DO NOTHING found a committed row (rowcount 0), the row was
    deleted before the SELECT ... FOR UPDATE, so `old` is the default and the final UPDATE hits no row;
    update returns the value as written although the key is absent."""
    a, b = pg_stores
    ta, tb = a.table("leases"), b.table("leases")
    original = a.connection
    raced: list[bool] = []

    @contextlib.contextmanager
    def hooked(*args, **kwargs):
        with original(*args, **kwargs) as conn:
            real = conn.execute

            def execute(query, params=None, *more, **kw):
                text = str(query)
                if text.startswith("INSERT INTO kv") and "DO NOTHING" in text and not raced:
                    raced.append(True)  # once: update then inserts again, and finds its own row
                    tb.put("lease", {"owner": "C", "until": 1e12})  # another replica takes it, committed
                    cursor = real(query, params, *more, **kw)
                    tb.delete("lease")  # and the case is forgotten: its lease deleted
                    return cursor
                return real(query, params, *more, **kw)

            conn.execute = execute
            try:
                yield conn
            finally:
                del conn.execute

    monkeypatch.setattr(a, "connection", hooked)
    written = ta.update("lease", lambda old: {"owner": "B", "until": 1e12})
    monkeypatch.undo()
    assert written == {"owner": "B", "until": 1e12}
    assert tb.get("lease") == written, ("update returned a value it did not write; stored:", tb.get("lease"))

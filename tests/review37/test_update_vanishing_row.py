"""Review 37 of c9995b0: PostgresTable.update inserts again when the row it found (its INSERT conflicted)
is deleted before its SELECT ... FOR UPDATE; at most UPDATE_INSERT_TRIES times, then StoreRefused with
nothing written. Bounded, and no write reported that did not happen."""

from __future__ import annotations

import contextlib

import pytest

from bot.store.errors import StoreRefused
from bot.store.postgres import UPDATE_INSERT_TRIES


def _vanishing(store, other, times: int, monkeypatch):
    """Each of the first `times` INSERTs of update() finds another's row, deleted before it is locked."""
    left = [times]
    real = store.connection

    @contextlib.contextmanager
    def connection(*args, **kwargs):
        with real(*args, **kwargs) as conn:
            execute = conn.execute

            class Proxy:
                def __getattr__(self, name):
                    return getattr(conn, name)

                def execute(self, sql, params=None):
                    if sql.startswith("INSERT INTO kv") and left[0] > 0:
                        other.table("leases").put("k", {"holder": "other"})
                        result = execute(sql, params)
                        other.table("leases").delete("k")
                        left[0] -= 1
                        return result
                    return execute(sql, params)

            yield Proxy()

    monkeypatch.setattr(store, "connection", connection)
    return left


@pytest.mark.parametrize("times", [1, UPDATE_INSERT_TRIES - 1])
def test_a_row_that_vanishes_a_few_times_is_inserted_again(pg_stores, monkeypatch, times):
    store, other = pg_stores
    _vanishing(store, other, times, monkeypatch)
    assert store.table("leases").update("k", lambda old: {"holder": "me", "old": old}) == {"holder": "me", "old": None}
    assert other.table("leases").get("k") == {"holder": "me", "old": None}


def test_a_row_that_keeps_vanishing_is_refused_with_nothing_written(pg_stores, monkeypatch):
    store, other = pg_stores
    _vanishing(store, other, 100, monkeypatch)
    calls = []
    with pytest.raises(StoreRefused):
        store.table("leases").update("k", lambda old: calls.append(old) or {"holder": "me"})
    assert calls == []
    assert other.table("leases").get("k") is None

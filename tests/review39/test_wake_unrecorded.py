"""Review 39 of cfc55a1: `_note_woken` no longer asks whether the case has a record; `Table.update` with a
change returning UNCHANGED must leave an absent key absent (PostgreSQL: a placeholder inserted and
deleted in one transaction). Attacks: a reply to a case never recorded, and a `CaseRecords.remember`
on another replica creating the record at that very moment, in either order."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from bot.cases.records import CaseRecords
from bot.domain import Case
from bot.store.tables import Store as SqliteStore
from bot.sync.cycle import CaseSync

CASE = Case(
    case_id="case-1",
    display_id="111",
    subject="s",
    status="opened",
    service_code="ec2",
    category_code="other",
    severity_code="low",
    submitted_by="a@b",
    time_created="2026-01-01T00:00:00Z",
)


def note_woken(store, case_id: str = CASE.case_id) -> None:
    CaseSync._note_woken(SimpleNamespace(store=store), case_id)


def test_a_wake_of_a_case_never_recorded_leaves_no_row_sqlite(tmp_path):
    store = SqliteStore(str(tmp_path / "bot.sqlite"))
    try:
        note_woken(store)
        assert CASE.case_id not in store.table("cases")
        assert len(store.table("cases")) == 0
    finally:
        store.close()


def test_a_wake_of_a_case_never_recorded_leaves_no_row_postgres(pg_stores):
    store, other = pg_stores
    note_woken(store)
    assert CASE.case_id not in other.table("cases")
    with other.connection() as conn:
        assert conn.execute("SELECT count(*) FROM kv").fetchone()[0] == 0


def _pause_inside_change(store, table_name: str, entered: threading.Event, release: threading.Event):
    """store.table(table_name).update's change waits for `release` (the row, or the placeholder, held)."""
    real_table = store.table

    def table(name):
        real = real_table(name)
        if name != table_name:
            return real

        class Paused:
            def __getattr__(self, attr):
                return getattr(real, attr)

            def update(self, key, change, default=None):
                def paused(raw):
                    entered.set()
                    assert release.wait(10)
                    return change(raw)

                return real.update(key, paused, default)

        return Paused()

    store.table = table


def test_remember_on_another_replica_while_the_wake_holds_its_placeholder(pg_stores):
    """The wake inserted its placeholder (uncommitted): remember's INSERT waits on the unique index,
    then finds the key free once the placeholder is deleted and committed, and writes the record."""
    store, other = pg_stores
    entered, release = threading.Event(), threading.Event()
    _pause_inside_change(store, "cases", entered, release)
    errors: list[BaseException] = []

    def run(fn):
        try:
            fn()
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    waker = threading.Thread(target=run, args=(lambda: note_woken(store),))
    waker.start()
    assert entered.wait(10)
    remembered = threading.Thread(target=run, args=(lambda: CaseRecords(other).remember(CASE),))
    remembered.start()
    remembered.join(0.5)
    assert remembered.is_alive(), "remember did not wait for the placeholder's transaction"
    release.set()
    waker.join(10)
    remembered.join(10)
    assert not errors, errors
    record = other.table("cases").get(CASE.case_id)
    assert record["display_id"] == "111" and "woken_at" not in record


def test_a_wake_while_remember_on_another_replica_holds_its_new_row(pg_stores):
    """remember inserted the record (uncommitted): the wake's INSERT waits, conflicts once it commits,
    and the wake stamps the new record."""
    store, other = pg_stores
    entered, release = threading.Event(), threading.Event()
    _pause_inside_change(other, "cases", entered, release)
    errors: list[BaseException] = []

    def run(fn):
        try:
            fn()
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    remembered = threading.Thread(target=run, args=(lambda: CaseRecords(other).remember(CASE),))
    remembered.start()
    assert entered.wait(10)
    waker = threading.Thread(target=run, args=(lambda: note_woken(store),))
    waker.start()
    waker.join(0.5)
    assert waker.is_alive(), "the wake did not wait for remember's row"
    release.set()
    remembered.join(10)
    waker.join(10)
    assert not errors, errors
    record = store.table("cases").get(CASE.case_id)
    assert record["display_id"] == "111" and record["woken_at"] > 0

"""The work journal: one record per human action, leased to one worker at a time, bounded by age."""

from __future__ import annotations

import pytest

from bot.store.journal import DONE, Journal, LeaseLost, reference
from bot.store.tables import Store


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path):
    store = Store(str(tmp_path / "bot.sqlite"))
    yield store
    store.close()


@pytest.fixture
def clock():
    return Clock()


def journal(store, clock, **options) -> Journal:
    """One process's journal; two of them on one store stand for two replicas."""
    return Journal(store.table("journal"), lease_seconds=60, clock=clock, **options)


def test_a_key_is_noted_once_and_a_redelivery_finds_it(store, clock):
    one = journal(store, clock)
    lease = one.record("reply:C1:1.0", "reply", "C1|0.5", {"text": "hi"})
    assert lease is not None
    assert one.record("reply:C1:1.0", "reply", "C1|0.5", {"text": "hi"}) is None
    entry = one.get("reply:C1:1.0")
    assert entry.data == {"text": "hi"} and entry.created_at == clock.now
    assert entry.ref == reference("reply:C1:1.0") and len(entry.ref) == 6


def test_a_live_lease_keeps_every_other_worker_out_until_it_runs_out(store, clock):
    mine, theirs = journal(store, clock), journal(store, clock)
    lease = mine.record("create:V1", "open_case", "create:V1", {})
    assert theirs.take("create:V1") is None
    assert theirs.take("create:V1", at_start=True) is None  # another replica's start-up too
    assert mine.take("create:V1") is None  # and another job of the same process
    assert [e.key for e in theirs.resumable()] == []
    clock.now += 61
    taken = theirs.take("create:V1")
    assert taken is not None
    with pytest.raises(LeaseLost):
        mine.save(lease, step=1)  # the first holder learns it lost the record before acting again
    theirs.finish(taken, case_id="case-1")
    assert theirs.get("create:V1").state == DONE


def test_working_renews_the_lease(store, clock):
    mine, theirs = journal(store, clock), journal(store, clock)
    lease = mine.record("k", "reply", "t", {})
    for _ in range(5):
        clock.now += 40
        mine.renew_held()
        assert theirs.take("k") is None
    clock.now += 40
    mine.save(lease, sent=1)
    assert theirs.take("k") is None
    assert mine.get("k").progress == {"sent": 1}


def test_with_one_process_per_store_a_dead_process_lease_is_taken_at_start(store, clock):
    dead = journal(store, clock)
    dead.record("k", "reply", "t", {})
    restarted = journal(store, clock, sole_owner=True)
    assert restarted.take("k") is None  # not by the periodic sweep: it could be a live one
    assert restarted.take("k", at_start=True) is not None


def test_resumable_is_oldest_first_and_released_records_are_free_at_once(store, clock):
    one = journal(store, clock)
    leases = []
    for key in ("b", "a", "c"):
        leases.append(one.record(key, "reply", "t", {}))
        clock.now += 1
    for lease in leases:
        one.release(lease)
    assert [e.key for e in journal(store, clock).resumable()] == ["b", "a", "c"]
    one.finish(one.take("a"))
    assert [e.key for e in journal(store, clock).resumable()] == ["b", "c"]


def test_finished_records_are_pruned_by_age_pending_ones_never(store, clock):
    one = journal(store, clock)
    one.finish(one.record("old", "reply", "t", {}))
    one.record("pending", "reply", "t", {})
    clock.now += 8 * 24 * 3600
    one.fail(one.record("recent", "reply", "t", {}), error="throttled")
    assert one.prune() == 1
    assert one.get("old") is None
    assert one.get("pending") is not None and one.get("recent") is not None


class _DownTable:
    """A journal table whose updates fail (the database went away)."""

    def __init__(self, table) -> None:
        self.table = table

    def __getattr__(self, name):
        return getattr(self.table, name)

    def update(self, key, change):
        from bot.store.backend import StoreError

        raise StoreError("connection lost")


@pytest.mark.parametrize("end", ["finish", "fail", "release"])
def test_a_record_whose_last_write_failed_is_let_go_so_its_lease_runs_out(store, clock, end):
    # Held on, renew_held() would keep its lease alive forever and nobody would resume it.
    mine = journal(store, clock)
    lease = mine.record("reply:C1:1.0", "reply", "C1|0.5", {})
    mine.table = _DownTable(store.table("journal"))
    with pytest.raises(Exception, match="connection lost"):
        getattr(mine, end)(lease)
    assert mine.held_count() == 0
    mine.table = store.table("journal")
    mine.renew_held()
    clock.now += 61
    assert journal(store, clock).take("reply:C1:1.0") is not None


class _AnswerLostTable:
    """A journal table whose claims are written, and then their answer is lost (the connection
    dropped after the commit); reads fail too when `reads_fail`."""

    def __init__(self, table, *, reads_fail: bool = False) -> None:
        self.table = table
        self.reads_fail = reads_fail

    def __getattr__(self, name):
        return getattr(self.table, name)

    def claim(self, key, value=True, **options):
        from bot.store.backend import StoreError

        self.table.claim(key, value, **options)
        raise StoreError("connection lost after the commit")

    def get(self, key, default=None):
        from bot.store.backend import StoreError

        if self.reads_fail:
            raise StoreError("still away")
        return self.table.get(key, default)


def test_a_note_written_whose_answer_was_lost_is_held_at_once_not_after_its_lease(store, clock):
    # Else the record waits, held by nobody, for its lease to run out, and every younger reply of
    # its thread waits behind it (review13 §3).
    mine = journal(store, clock)
    mine.table = _AnswerLostTable(store.table("journal"))
    lease = mine.record("reply:C1:1.0", "reply", "C1|0.5", {"text": "hi"})
    assert lease is not None and mine.held("reply:C1:1.0") == lease
    mine.table = store.table("journal")
    assert mine.finish(lease).state == DONE


def test_a_note_whose_answer_was_lost_and_cannot_be_read_back_is_an_error(store, clock):
    # Unknown outcome: the caller answers Slack 503, and the redelivery finds the record noted.
    mine = journal(store, clock)
    mine.table = _AnswerLostTable(store.table("journal"), reads_fail=True)
    with pytest.raises(Exception, match="connection lost after the commit"):
        mine.record("reply:C1:1.0", "reply", "C1|0.5", {"text": "hi"})
    assert mine.held_count() == 0


def test_a_note_lost_to_another_writer_is_not_taken_as_ours_but_found_noted(store, clock):
    # As claim() answering False: the other holder works on it; this caller is not told of a failure.
    theirs, mine = journal(store, clock), journal(store, clock)
    assert theirs.record("reply:C1:1.0", "reply", "C1|0.5", {}) is not None
    mine.table = _AnswerLostTable(store.table("journal"))
    assert mine.record("reply:C1:1.0", "reply", "C1|0.5", {}) is None
    assert mine.held_count() == 0 and theirs.held_count() == 1


def test_a_note_the_store_refused_is_not_read_back(store, clock):
    # Refused (a lock waited for too long, no connection to be had): nothing was written, and a read
    # back would hold a form's request as long again before its ack.
    from bot.store.errors import StoreRefused

    class Refusing(_AnswerLostTable):
        def claim(self, key, value=True, **options):
            raise StoreRefused("canceling statement due to lock timeout")

        def get(self, key, default=None):
            raise AssertionError("read back after a refusal")

    mine = journal(store, clock)
    mine.table = Refusing(store.table("journal"))
    with pytest.raises(StoreRefused):
        mine.record("create:V1", "open_case", "create:V1", {})


class _Unlisted:
    """A journal table that refuses to be listed whole."""

    def __init__(self, table) -> None:
        self.table = table

    def __getattr__(self, name):
        if name in ("items", "keys", "values"):
            raise AssertionError(f"the journal listed every record ({name})")
        return getattr(self.table, name)


def test_the_sweep_reads_only_pending_records_not_a_week_of_finished_ones(store, clock):
    # Every replica sweeps every 20 s: listed whole, 10,000 finished records cost it 100 to 200 ms of
    # CPU each time, beside the acks it serves.
    one = journal(store, clock)
    for n in range(3):
        one.finish(one.record(f"reply:C1:{n}.0", "reply", "C1|0.5", {}))
    one.release(one.record("reply:C1:7.0", "reply", "C1|0.5", {}))
    clock.now += 1
    one.record("reply:C1:8.0", "reply", "C1|0.5", {})  # held: not resumable
    one.table = _Unlisted(store.table("journal"))

    assert [entry.key for entry in one.resumable()] == ["reply:C1:7.0"]

"""Review 29 (B1): with DATABASE_URL, any replica syncs a case (the poller on the lease holder, a Refresh
click or an event on another). The sync's state was cached per process ("one process, one writer per
case"), so a Refresh on another replica, or a replica taking the lease over, posted again an AWS answer
the holder had posted. Now every read goes to the store, and a sync holds the case's lease there."""

from __future__ import annotations

from bot.store.lease import Leases
from bot.sync.state import SYNC_LEASE_PREFIX, SyncInterrupted
from tests.sync.helpers import click_card_button, linked_case, texts


def test_a_refresh_on_another_replica_does_not_post_again_what_the_poller_posted(bot_factory, pg_url):
    holder = bot_factory(env={"DATABASE_URL": pg_url})  # plays the lease holder: its poller is run by hand
    other = bot_factory(env={"DATABASE_URL": pg_url})  # serves a Refresh click
    case, thread = linked_case(holder)

    # A first Refresh on the other replica: it reads (and caches) the case's sync state.
    click_card_button(other, "C1", thread, "case_refresh")
    assert other.services.work.wait_idle(timeout=20)

    holder.sandbox.add_aws_reply(case.case_id, "the engineer's answer")
    holder.services.sync.run_cycle()
    assert texts(holder, thread) == ["the engineer's answer"]

    # Someone clicks Refresh again; the other replica serves it.
    click_card_button(other, "C1", thread, "case_refresh")
    assert other.services.work.wait_idle(timeout=20)
    assert texts(holder, thread) == ["the engineer's answer"]  # fails: posted twice


def test_the_replica_taking_over_does_not_post_again_what_the_previous_holder_posted(bot_factory, pg_url):
    holder = bot_factory(env={"DATABASE_URL": pg_url})
    standby = bot_factory(env={"DATABASE_URL": pg_url})
    case, thread = linked_case(holder)
    standby.services.sync.poster.pacer = holder.services.sync.poster.pacer
    # The standby sent a person's thread reply: its wake() read the sync states (and cached them).
    holder.slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    standby.user_message("C1", "any news?", thread_ts=thread)
    assert standby.services.work.wait_idle(timeout=20)

    holder.sandbox.add_aws_reply(case.case_id, "answer one")
    holder.services.sync.run_cycle()
    assert texts(holder, thread) == ["answer one"]

    # The holder dies; the standby takes the lease over and runs the poller's cycle.
    standby.services.sync.run_cycle()
    assert texts(holder, thread) == ["answer one"]  # fails: posted twice


def test_a_case_another_replica_is_syncing_is_left_to_it_then_synced_once(bot_factory, pg_url):
    bot = bot_factory(env={"DATABASE_URL": pg_url})
    case, thread = linked_case(bot)
    bot.sandbox.add_aws_reply(case.case_id, "the engineer's answer")
    leases = Leases(bot.services.store)
    assert leases.acquire(SYNC_LEASE_PREFIX + case.case_id, "another-replica", 60).held_by("another-replica")

    assert bot.services.sync.sync_case(case.case_id) == 0  # the other one posts it
    assert texts(bot, thread) == []

    assert leases.release(SYNC_LEASE_PREFIX + case.case_id, "another-replica")
    assert bot.services.sync.sync_case(case.case_id) > 0
    assert bot.services.sync.sync_case(case.case_id) == 0
    assert texts(bot, thread) == ["the engineer's answer"]


def test_a_sync_whose_lease_ran_out_stops_before_its_next_save(bot_factory, pg_url):
    bot = bot_factory(env={"DATABASE_URL": pg_url})
    case, _thread = linked_case(bot)
    states = bot.services.sync.states
    with states.holding(case.case_id) as held:
        assert held
        state = states.get(case.case_id)
        # This replica stalled past its lease, and another took the case over.
        leases = Leases(bot.services.store)
        assert leases.release(SYNC_LEASE_PREFIX + case.case_id, states.owner)
        assert leases.acquire(SYNC_LEASE_PREFIX + case.case_id, "another-replica", 60).held_by("another-replica")
        try:
            states.save(state)
        except SyncInterrupted:
            pass
        else:
            raise AssertionError("saved (and would post) while another replica held the case")


def test_a_sync_stuck_for_good_lets_its_case_go_after_a_bounded_hold(bot_factory, pg_url, monkeypatch):
    # Review31: the lease is renewed beside the sync (a slow post); a sync that never ends must not
    # hold the case from every other replica for as long as its process lives.
    import time

    from bot.sync import state as sync_state

    monkeypatch.setattr(sync_state, "SYNC_HOLD_LIMIT_TERMS", 2)
    bot = bot_factory(env={"DATABASE_URL": pg_url})
    case, _thread = linked_case(bot)
    states = bot.services.sync.states
    states.lease_seconds = 0.3
    leases = Leases(bot.services.store)
    name = SYNC_LEASE_PREFIX + case.case_id
    with states.holding(case.case_id) as held:
        assert held
        deadline = time.monotonic() + 10
        while not leases.acquire(name, "another-replica", 60).held_by("another-replica"):
            assert time.monotonic() < deadline, "the stuck sync's lease was renewed for ever"
            time.sleep(0.1)


class _ClockAhead:
    """This replica's `time` module, its wall clock some seconds ahead of the database's (NTP off)."""

    def __init__(self, seconds: float) -> None:
        import time

        self.seconds = seconds
        self.monotonic = time.monotonic
        self._time = time.time

    def time(self) -> float:
        return self._time() + self.seconds


def test_a_status_read_is_timed_by_the_database_clock_not_the_replicas_own(bot_factory, pg_url, monkeypatch):
    # Review31 D1: the time of the last status read applied is compared across replicas. Taken by each
    # replica's own clock, a replica 5 s ahead let through a read older than another replica's (the card
    # flipped back, a false status line) and stamped a time that then held off the others' newer reads.
    import time

    from bot.sync import cycle

    holder = bot_factory(env={"DATABASE_URL": pg_url})
    other = bot_factory(env={"DATABASE_URL": pg_url})
    case, thread = linked_case(holder)
    holder.services.sync.run_cycle()
    stale = holder.services.gateway.get_case(case.case_id)  # read by the holder's poller...
    stale_read = time.monotonic() - 1.0  # ...a second before the Refresh below
    holder.services.gateway.resolve_case(case.case_id)
    click_card_button(other, "C1", thread, "case_refresh")  # the other replica applies "resolved"
    assert other.services.work.wait_idle(timeout=20)

    monkeypatch.setattr(cycle, "time", _ClockAhead(5.0))
    assert holder.services.sync._read_before_the_last_status(stale, stale_read), "an older read was let through"

    # A newer read, applied by the replica whose clock is ahead, is stamped by the database's clock: a
    # stamp 5 s ahead would hold off the other replicas' reads for those 5 s.
    holder.services.gateway.add_communication(case.case_id, "it is down again")  # AWS reopens the case
    fresh = holder.services.gateway.get_case(case.case_id)
    assert not holder.services.sync._read_before_the_last_status(fresh, time.monotonic())
    stamp = float(holder.services.store.table("cases").get(case.case_id)["status_read_at"])
    assert stamp <= holder.services.store.now() + 0.5, f"stamped {stamp - holder.services.store.now():.1f} s ahead"


def test_a_resolved_case_whose_read_was_skipped_is_read_again_next_cycle(bot_factory, pg_url):
    # Review31 D2: a resolved case is looked at every 30 minutes. When its read is skipped as older than
    # another replica's (a reopen in the AWS console, say), it must be due at the next cycle.
    import time
    from dataclasses import replace

    holder = bot_factory(env={"DATABASE_URL": pg_url})
    other = bot_factory(env={"DATABASE_URL": pg_url})
    case, thread = linked_case(holder)
    holder.services.gateway.resolve_case(case.case_id)
    holder.services.sync.run_cycle()
    states = holder.services.sync.states
    assert states.get(case.case_id).next_check_at > time.time() + 60  # resting: rechecked in 30 minutes

    # Reopened in the AWS console; this read of it is a second older than the other replica's.
    stale = replace(holder.services.gateway.get_case(case.case_id), status="reopened")
    stale_read = time.monotonic() - 1.0
    click_card_button(other, "C1", thread, "case_refresh")  # another replica applies a newer read
    assert other.services.work.wait_idle(timeout=20)
    holder.services.store.table("cases").update(
        case.case_id, lambda record: {**record, "status_read_at": holder.services.store.now()}
    )
    assert holder.services.sync._read_before_the_last_status(stale, stale_read)
    assert states.get(case.case_id).next_check_at == 0.0

"""Review 37 of c9995b0: the settle is a `change` that writes the recheck wherever the row holds
PROVISIONAL_RECHECK (-1). The marker is the same for every sync, and the settle does not check the sync
still holds the case's lease. A sync whose lease ran out between its provisional save and its settle
(stalled: a paused VM, renewals refused while the database flapped, a sync past its keeper's 10 terms)
settles the marker of the replica that took the case over, after a wake-up that replica saw and left
due: the wake-up is lost (the case is looked at in 30 minutes, not next cycle)."""

from __future__ import annotations

import time
from dataclasses import asdict
from functools import partial
from types import SimpleNamespace

from bot.sync.cycle import RESOLVED_RECHECK_SECONDS, CaseSync
from bot.sync.state import SyncState, SyncStates

CASE = "case-r37-stale-settle"


def _resolving_save(states: SyncStates, ns, woken_since_read) -> None:
    """What CaseSync._apply does for a resolved snapshot of a resting case whose status changed."""
    state = states.get(CASE)
    state.status = "resolved"
    state.next_check_at = time.time() + RESOLVED_RECHECK_SECONDS
    states.save(state, woken_since_read=woken_since_read)


def test_a_stale_settle_does_not_consume_another_replicas_provisional_recheck(pg_store):
    store = pg_store
    store.table("cases").put(CASE, {"case_id": CASE, "status": "resolved"})
    store.table("sync").put(
        CASE, asdict(SyncState(case_id=CASE, status="opened", watermark="2026-01-01T00:00:00.000Z"))
    )
    a, b, waker = SyncStates(store), SyncStates(store), SyncStates(store)
    ns = SimpleNamespace(store=store)
    seen: dict = {}

    def a_checks_then_stalls(read_at: float) -> bool:
        woken = CaseSync._woken_since(ns, CASE, read_at)  # nothing yet: False
        # A stalls here past its lease (the record says what a lease that ran out says).
        store.table("leases").put("sync:" + CASE, {"holder": a.owner, "expires_at": 0.0, "since": 0.0})
        # Replica B takes the case over and reads a snapshot; then a reply wakes the case; then B saves.
        with b.holding(CASE) as held:
            assert held
            b_read_at = store.now()
            time.sleep(0.01)
            CaseSync._note_woken(ns, CASE)  # CaseSync.wake on a third replica
            waker.wake(CASE)
            _resolving_save(b, ns, partial(CaseSync._woken_since, ns, CASE, b_read_at))
            seen["after_b"] = store.table("sync").get(CASE)["next_check_at"]
        return woken

    with a.holding(CASE) as held:
        assert held
        a_read_at = store.now()
        _resolving_save(a, ns, partial(a_checks_then_stalls, a_read_at))

    woken_at = float(store.table("cases").get(CASE)["woken_at"])
    assert woken_at > a_read_at  # the wake-up came after both snapshots were read
    assert seen["after_b"] <= time.time(), "B saw the wake-up and left the case due"
    next_check_at = store.table("sync").get(CASE)["next_check_at"]
    assert next_check_at <= time.time(), (
        f"the wake-up is lost: A's stale settle wrote a recheck in {next_check_at - time.time():.0f} s"
    )

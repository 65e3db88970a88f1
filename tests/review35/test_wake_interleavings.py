"""Review 35 of ecc0ac8: every interleaving of a wake-up on one replica with a resolving sync on another,
sharing one PostgreSQL database, step by step.

Wake (CaseSync._note_woken, then SyncStates.wake, the bot's own code): W1n its store clock read,
W1u its locked update of the case's record, W2a `change`'s pre-read of the sync row, W2b its locked
update. Sync (what CaseSync._apply does for a resolved snapshot, with SyncStates.save and
CaseSync._woken_since, the bot's own code): R the snapshot's read time, G its get of the state, S its
save's locked update (and commit), P1 its post-commit read of woken_at, Pa/Pb the post-commit
`change`'s pre-read and locked update.

For each order (every interleaving of the two sequences, C(10, 4) = 210) and each starting row (none,
0, a future recheck with and without something else to save): when the wake's clock read came after
the snapshot's read, the case must be due once both are done (next_check_at 0, or the provisional
recheck, already past, that a sync saves while it settles one); a later sync whose
snapshot was read after the wake rests the case again (not due on every cycle for ever); no null
row is left."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import asdict
from functools import partial
from types import SimpleNamespace

import pytest

from bot.sync.cycle import RESOLVED_RECHECK_SECONDS, CaseSync
from bot.sync.state import SyncState, SyncStates
from tests.review35.gated import GatedStore, Schedule, act, stop_acting

WAKE = ["W1n", "W1u", "W2a", "W2b"]
SYNC = ["R", "G", "S", "P1", "Pa", "Pb"]
OWNERS = {**{s: "wake" for s in WAKE}, **{s: "sync" for s in SYNC}}
CASE = "case-r35-interleave"


def orders():
    for wake_at in itertools.combinations(range(10), 4):
        w, s = iter(WAKE), iter(SYNC)
        yield [next(w) if i in wake_at else next(s) for i in range(10)]


def starting_row(kind: str) -> dict | None:
    if kind == "none":
        return None
    if kind == "zero":  # an open case, read resolved now (its status changes: saved)
        return asdict(SyncState(case_id=CASE, status="opened", watermark="2026-01-01T00:00:00.000Z"))
    # a resting resolved case
    return asdict(
        SyncState(
            case_id=CASE,
            status="resolved",
            watermark="2026-01-01T00:00:00.000Z",
            next_check_at=time.time() + RESOLVED_RECHECK_SECONDS / 2,
        )
    )


def one_sync(schedule, states: SyncStates, ns, kind: str, results: dict) -> None:
    """CaseSync._apply's steps for a resolved snapshot (the rest of it posts, and writes nothing else)."""
    act(schedule, {("sync", "get"): ["G", "Pa"], ("sync", "update"): ["S", "Pb"], ("cases", "get"): ["P1"]})
    try:
        with states.holding(CASE) as held:
            assert held
            read_at = schedule.run("R", ns.store._store.now)
            results["read_at"] = read_at
            state = states.get(CASE)
            fresh = state is None or not state.watermark
            if fresh:
                state = SyncState(case_id=CASE, status="resolved", watermark="2026-01-01T00:00:00.000Z")
            status_changed = state.status != "resolved"
            state.status = "resolved"
            now = time.time()
            next_check = state.next_check_at if state.next_check_at > now else now + RESOLVED_RECHECK_SECONDS
            new_communication = kind == "future+save"
            changed = fresh or new_communication or status_changed or next_check != state.next_check_at
            state.next_check_at = next_check
            if new_communication:
                state.seen["k"] = "2026-01-01T00:00:00.000Z"
            if changed:
                states.save(state, woken_since_read=partial(CaseSync._woken_since, ns, CASE, read_at))
            stop_acting()
    except BaseException as error:  # noqa: BLE001
        results["sync_error"] = error
    finally:
        stop_acting()
        schedule.actor_done("sync")


def one_wake(schedule, states: SyncStates, ns, results: dict) -> None:
    act(
        schedule,
        {
            ("store", "now"): ["W1n"],
            ("cases", "update"): ["W1u"],
            ("sync", "get"): ["W2a"],
            ("sync", "update"): ["W2b"],
        },
    )
    try:
        CaseSync._note_woken(ns, CASE)  # CaseSync.wake, without the process's case lock (another replica)
        states.wake(CASE)
    except BaseException as error:  # noqa: BLE001
        results["wake_error"] = error
    finally:
        stop_acting()
        schedule.actor_done("wake")


@pytest.mark.parametrize("kind", ["none", "zero", "future+save", "future"])
def test_every_interleaving_of_a_wake_with_a_resolving_sync_keeps_the_wake(pg_store, kind):
    store = pg_store
    lost, forever, errors, null_rows = [], [], [], []
    for order in orders():
        store.table("sync").delete(CASE)
        store.table("leases").delete("sync:" + CASE)
        store.table("cases").put(CASE, {"case_id": CASE, "status": "resolved"})
        row = starting_row(kind)
        if row is not None:
            store.table("sync").put(CASE, row)
        holder, other = GatedStore(store), GatedStore(store)
        syncing, waking = SyncStates(holder), SyncStates(other)
        schedule = Schedule(order, OWNERS)
        results: dict = {}
        threads = [
            threading.Thread(target=one_sync, args=(schedule, syncing, SimpleNamespace(store=holder), kind, results)),
            threading.Thread(target=one_wake, args=(schedule, waking, SimpleNamespace(store=other), results)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        if "sync_error" in results or "wake_error" in results:
            errors.append((order, results))
            continue
        raw = store.table("sync").get(CASE, "absent")
        if raw is None:
            null_rows.append(order)
            continue
        woken_at = float((store.table("cases").get(CASE) or {}).get("woken_at") or 0.0)
        woken_after_read = woken_at > results["read_at"]
        # Due: 0, or the provisional recheck a sync saves while it settles one (any time already past).
        if woken_after_read and raw != "absent" and raw["next_check_at"] > time.time():
            lost.append((schedule.ran, round(raw["next_check_at"] - time.time())))
            continue
        # The next cycle: a snapshot read after the wake rests the case again.
        later = SyncStates(store)
        with later.holding(CASE) as held:
            assert held
            read_at = store.now()
            state = later.get(CASE)
            if state is not None and state.next_check_at <= time.time():
                state.next_check_at = time.time() + RESOLVED_RECHECK_SECONDS
                later.save(
                    state, woken_since_read=partial(CaseSync._woken_since, SimpleNamespace(store=store), CASE, read_at)
                )
                if later.get(CASE).next_check_at <= time.time():
                    forever.append(schedule.ran)
    assert errors == [], errors[:3]
    assert null_rows == [], null_rows[:3]
    assert lost == [], (f"{len(lost)} orders lose the wake", lost[:5])
    assert forever == [], forever[:3]

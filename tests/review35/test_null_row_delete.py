"""Review 35 of ecc0ac8: `SyncStates.change` deletes the row when its update wrote a null (the state was
forgotten between its pre-read and its update). The delete is a separate, unconditional statement after
the update's commit: a real state another replica wrote in between (queued on the inserted row's lock,
it commits right after the null) is deleted with it."""

from __future__ import annotations

import threading
from collections import defaultdict
from types import SimpleNamespace

from bot.store.postgres import PostgresStore
from bot.sync.cycle import CaseSync
from bot.sync.state import SyncState, SyncStates
from tests.review35.gated import GatedStore, Schedule, act, stop_acting

CASE = "case-r35-nullrow"


def test_a_wake_deleting_its_null_row_keeps_a_state_written_meanwhile(pg_url):
    store = PostgresStore.connect(pg_url)
    try:
        store.table("sync").put(
            CASE,
            {
                **SyncState(case_id=CASE, status="resolved", watermark="2026-01-01T00:00:00.000Z").__dict__,
                "next_check_at": 4e9,
            },
        )
        waking, forgetting, watching = (SyncStates(GatedStore(store)) for _ in range(3))
        # W2a the wake's pre-read (a resting state: it will write 0); F another replica's _forget_unfollowed
        # (the case was unlinked); Cg/Cu a watch carding the case in another channel on a third replica
        # (CaseSync.follow_whole_case: a new state, before its card); W2b the wake's update (the row is
        # gone: it inserts a null, and writes it); Cu queued behind it writes the watch's state; W2d the
        # wake's delete of "its" null row.
        order = ["W2a", "F", "Cg", "W2b", "Cu", "W2d"]
        owners = {"W2a": "wake", "W2b": "wake", "W2d": "wake", "F": "forget", "Cg": "watch", "Cu": "watch"}
        schedule = Schedule(order, owners)
        errors: list[BaseException] = []

        def actor(name, labels, call):
            def run():
                act(schedule, labels)
                try:
                    call()
                except BaseException as error:  # noqa: BLE001
                    errors.append(error)
                finally:
                    stop_acting()
                    schedule.actor_done(name)

            return threading.Thread(target=run)

        watch_sync = SimpleNamespace(_case_locks=defaultdict(threading.Lock), states=watching)
        case = SimpleNamespace(case_id=CASE, status="opened", time_created="2026-01-01T00:00:00.000Z")
        threads = [
            actor(
                "wake",
                {("sync", "get"): ["W2a"], ("sync", "update"): ["W2b"], ("sync", "delete"): ["W2d"]},
                lambda: waking.wake(CASE),
            ),
            actor("forget", {("sync", "delete"): ["F"]}, lambda: forgetting.delete(CASE)),
            actor(
                "watch",
                {("sync", "get"): ["Cg"], ("sync", "update"): ["Cu"]},
                lambda: CaseSync.follow_whole_case(watch_sync, case, "C2"),
            ),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
        # Since the fix the wake's update writes nothing for a state forgotten meanwhile: no delete (W2d).
        assert schedule.ran in (order, order[:-1])
        raw = store.table("sync").get(CASE, "absent")
        assert isinstance(raw, dict) and raw.get("full_history") == ["C2"], (
            "the watch's state, written after the null, was deleted by the wake:",
            raw,
        )
    finally:
        store.close()

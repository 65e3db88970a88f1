"""Review 34 of 1673561: `SyncStates.save` now runs `woken_since_read` inside `PostgresTable.update`, which
holds a pooled connection (and the sync row's lock) while the callback reads the `cases` table on a
second pooled connection. With POOL_SIZE (8) saves of resolved cases in that callback at once, every
connection is held by a caller waiting for another: each waits the pool's timeout (5 s) and fails."""

from __future__ import annotations

import threading
import time
from functools import partial

from bot.store.postgres import POOL_SIZE, PostgresStore
from bot.sync.state import SyncState, SyncStates


def test_saves_that_check_their_wake_at_once_do_not_exhaust_the_pool(pg_url):
    store = PostgresStore.connect(pg_url)
    try:
        states = SyncStates(store)
        assert states.shared
        cases = store.table("cases")
        for n in range(POOL_SIZE):
            cases.put(f"case-{n}", {"case_id": f"case-{n}"})
        together = threading.Barrier(POOL_SIZE, timeout=10)
        failures: list[BaseException] = []
        took: list[float] = []

        def woken_since(case_id: str, read_at: float) -> bool:
            together.wait()  # every save inside its update at once, as with 8 syncs saving at the same time
            record = cases.get(case_id) or {}  # CaseSync._woken_since: on another pooled connection
            return float(record.get("woken_at") or 0.0) > read_at

        def one(n: int) -> None:
            case_id = f"case-{n}"
            started = time.monotonic()
            try:
                with states.holding(case_id) as held:
                    assert held
                    state = SyncState(case_id=case_id, status="resolved", next_check_at=time.time() + 1800)
                    states.save(state, woken_since_read=partial(woken_since, case_id, store.now() - 1))
            except BaseException as error:  # noqa: BLE001
                failures.append(error)
            took.append(time.monotonic() - started)

        threads = [threading.Thread(target=one, args=(n,)) for n in range(POOL_SIZE)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert failures == [], (f"{len(failures)} of {POOL_SIZE} saves failed after {max(took):.1f} s", failures[:1])
    finally:
        store.close()

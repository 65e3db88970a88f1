"""Store operations per second on each backend, side by side: claim, update, put, get.

    python -m bench.store [--ops 1000] [--threads 4] [--url postgresql://…]

sqlite is a sqlitedict file in a temporary folder; PostgreSQL is `--url` or, by default, a throwaway
cluster started like the tests' (PostgreSQL 15, with fsync and synchronous commit ON, as in
production), reached over TCP on 127.0.0.1. Every write is durable when it returns on both. `update`
is a read-modify-write of one key (what a lease renewal is); the threaded rows run `--threads` threads
at once, updates all on one key (the worst case: they queue on one row lock). The prune rows are
the replay claims' minute prune (a third of `--ops` claims out of the window), in claims looked at
per second: as it was (each listed, the old ones deleted one by one) and as it is (one statement).
The sweep rows are the journal keeper's search for pending records among `--ops` finished ones, in
records per second: listed whole (as it was) and picked by the database (items_with).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bot.store.backend import Store


def per_second(ops: int, run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return ops / (time.perf_counter() - started)


def threaded(threads: int, work: Callable[[int], None]) -> Callable[[], None]:
    def run() -> None:
        start = threading.Barrier(threads)

        def one(n: int) -> None:
            start.wait()
            work(n)

        pool = [threading.Thread(target=one, args=(n,)) for n in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()

    return run


def measure(store: Store, ops: int, threads: int) -> dict[str, float]:
    events, sync, links = store.table("events"), store.table("sync"), store.table("links")
    events.put("warm", 1)  # warm-up: connections, the first transaction
    record = {"case_id": "case-123", "channel": "C0123", "ts": "1712345678.000100", "by": "U1", "n": 1}
    per_thread = max(1, ops // threads)

    def bump(old: dict | None) -> dict:
        return {**record, "n": (old or {"n": 0})["n"] + 1}

    def claims(n: int) -> None:
        for i in range(per_thread):
            events.claim(f"t{n}-{i}", record)

    def updates(n: int) -> None:
        for _ in range(per_thread):
            sync.update("hot", bump)

    requests = store.table("requests")
    horizon = 1_000_000

    def stamped() -> None:  # a third of them older than the horizon
        requests.put_many({f"v0={i:064x}": horizon - 300 + i % 900 for i in range(ops)})

    def prune_listed() -> None:  # how ReplayGuard pruned before delete_stamped_before
        for key, stamp in requests.items():
            if not isinstance(stamp, int) or stamp < horizon:
                requests.delete(key)

    stamped()
    listed = per_second(ops, prune_listed)
    stamped()
    one_statement = per_second(ops, lambda: requests.delete_stamped_before(horizon))

    journal = store.table("journal")
    finished = {"state": "done", "kind": "reply", "data": {"text": "Any news on this?"}, "outcome": {"ok": True}}
    journal.put_many({f"reply:C1:{i}.000100": finished for i in range(ops)})
    journal.put("reply:C1:pending", {**finished, "state": "pending"})

    def sweep_listed() -> None:  # how Journal.resumable found the pending records before items_with
        [key for key, raw in journal.items() if isinstance(raw, dict) and raw.get("state") == "pending"]

    return {
        "sweep journal, listed": per_second(ops, sweep_listed),
        "sweep journal, items_with": per_second(ops, lambda: list(journal.items_with("state", "pending"))),
        "prune claims, listed": listed,
        "prune claims, 1 statement": one_statement,
        "claim": per_second(ops, lambda: [events.claim(f"ev-{i}", record) for i in range(ops)]),
        "claim (lost)": per_second(ops, lambda: [events.claim(f"ev-{i}", record) for i in range(ops)]),
        "update": per_second(ops, lambda: [sync.update("lease", bump) for _ in range(ops)]),
        "put": per_second(ops, lambda: [links.put(f"k-{i}", record) for i in range(ops)]),
        "get": per_second(ops, lambda: [links.get(f"k-{i}") for i in range(ops)]),
        f"claim ×{threads} threads": per_second(per_thread * threads, threaded(threads, claims)),
        f"update ×{threads} threads, 1 key": per_second(per_thread * threads, threaded(threads, updates)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1000, help="operations per row")
    parser.add_argument("--threads", type=int, default=4, help="threads in the threaded rows")
    parser.add_argument("--url", default="", help="an empty PostgreSQL database (default: a throwaway cluster)")
    args = parser.parse_args(argv)

    from bot.store.postgres import PostgresStore
    from bot.store.tables import Store as SqliteStore

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SqliteStore(str(Path(tmp) / "bench.sqlite"))
        try:
            results["sqlite"] = measure(sqlite, args.ops, args.threads)
        finally:
            sqlite.close()

    cluster = None
    url = args.url
    if not url:
        from tests.support.postgres import start_cluster

        try:
            cluster = start_cluster(durable=True)
        except BaseException as skipped:  # noqa: BLE001 - pytest's skip outcome is a BaseException
            print(f"PostgreSQL: not measured ({skipped})")
        else:
            url = cluster.create_database("bench")
    try:
        if url:
            postgres = PostgresStore.connect(url)
            try:
                results["postgres"] = measure(postgres, args.ops, args.threads)
            finally:
                postgres.close()
    finally:
        if cluster:
            cluster.destroy()

    names = list(results)
    print(f"{'ops/s':<26}" + "".join(f"{name:>12}" for name in names))
    for operation in results["sqlite"]:
        print(f"{operation:<26}" + "".join(f"{results[name][operation]:>12,.0f}" for name in names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

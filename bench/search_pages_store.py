"""One `search`'s store time with many kept searches (issue 11 review): how long keeping its pages
takes when 1,000 other searches of 500 cases each are kept (SQLite; DATABASE_URL for PostgreSQL).

    python -m bench.search_pages_store [--kept 1000] [--cases 500]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from bot.cases.search import SearchResult
from bot.cases.search_pages import SearchPages
from bot.domain import Case
from bot.store.backend import open_location


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kept", type=int, default=1000)
    parser.add_argument("--cases", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_location(os.environ.get("DATABASE_URL") or str(Path(tmp) / "bench.sqlite"))
        cases = [
            Case(
                f"case-1234-{n}",
                str(n),
                f"Queue stuck in region {n}",
                "opened",
                "svc",
                "cat",
                "low",
                "u@x",
                "2026-01-01",
            )
            for n in range(args.cases)
        ]
        result = SearchResult(cases=cases)
        table = store.table("searches")
        record = SearchPages(store).keep(result, text="queue", user="U1", channel="C1")
        kept = table.get(record.token)
        table.put_many({f"{int(store.now()):x}.seed{n}": kept for n in range(args.kept)})
        times = []
        for _ in range(5):
            pages = SearchPages(store)  # a fresh process's view: its first search may prune
            start = time.perf_counter()
            token = pages.keep(result, text="queue", user="U1", channel="C1").token
            pages.load(token, user="U1", channel="C1", visible=lambda c: True)
            times.append(time.perf_counter() - start)
        print(
            f"{args.kept} kept searches x {args.cases} cases: one search's store time median "
            f"{statistics.median(times) * 1000:.1f} ms (max {max(times) * 1000:.1f} ms)"
        )
        store.close()


if __name__ == "__main__":
    main()

"""The poller across many accounts: 20 accounts × 250 linked cases against the sandbox.

    python -m bench.accounts [--accounts 20] [--cases 250] [--cycles 3]

A child process starts the sandbox as its own process (`python -m bot.sandbox --accounts N`, so the
emulator's memory is not counted), builds the bot as `--sandbox` with BOT_SANDBOX_ACCOUNTS=N would
(account 1 with the bot's own credentials, the others through sts:AssumeRole), opens the cases in each
account, links them in a fresh store, runs one warm-up cycle, then measures idle cycles: Support calls
against Σ ceil(N_account/100), wall time, peak RSS (goal < 150 MB), and the latency of the cross-account
`search` itself over 12 months of cases (each account's cases backdated through the sandbox's
control API, spread over the last 360 days; DescribeCases with afterTime, paged, the accounts asked
concurrently, then matched by words).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.poll import CATEGORY, SERVICE, free_port, peak_rss_mb, rss_mb, start_sandbox_with


def measure(accounts: int, per_account: int, cycles: int) -> dict[str, object]:
    from bot.accounts.routing import AccountGateways
    from bot.bootstrap import build_services
    from bot.cases.search import parse_search, search_cases
    from bot.cases.service import CaseLink
    from bot.config import load_settings
    from bot.domain import NewCase

    port = free_port()
    sandbox = start_sandbox_with(port, ["--accounts", str(accounts)])
    url = f"http://127.0.0.1:{port}"
    workdir = tempfile.mkdtemp(prefix="bench-accounts-")
    try:
        settings = load_settings(
            {
                "BOT_DB_PATH": str(Path(workdir) / "bot.sqlite"),
                "SLACK_API_URL": "http://127.0.0.1:9/api/",  # idle cycles post nothing: this reaches nothing
                "BOT_SANDBOX_ACCOUNTS": str(accounts),
            },
            require_slack=False,
            sandbox=True,
        )
        services = build_services(settings, aws_endpoint_url=url)
        routing = services.gateway
        assert isinstance(routing, AccountGateways)

        def open_case(job: tuple[str, int]) -> str:
            alias, i = job
            new_case = NewCase(f"{alias} bench case {i}", SERVICE, CATEGORY, "normal", f"body {i}")
            return services.gateways[alias].create_case(new_case)

        jobs = [(alias, i) for alias in services.gateways for i in range(per_account)]
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            case_ids = list(pool.map(open_case, jobs))
        opening = time.perf_counter() - started
        now = time.time()
        services.store.table("links").put_many(
            {
                f"{case_id}|C{i % 20:04d}": asdict(
                    CaseLink(case_id, f"C{i % 20:04d}", f"{now:.6f}", linked_by="UBENCH", linked_at=now)
                )
                for i, case_id in enumerate(case_ids)
            }
        )

        poller = services.poller
        started = time.perf_counter()
        poller.run_cycle()  # warm-up: first sight of every case, every role assumed
        warmup = time.perf_counter() - started
        rss_before = rss_mb()
        calls, walls = [], []
        for _ in range(cycles):
            before = routing.calls
            started = time.perf_counter()
            report = poller.run_cycle()
            walls.append(time.perf_counter() - started)
            calls.append(routing.calls - before)
            if report.posted or report.failed_accounts:
                raise SystemExit(f"an idle cycle posted {report.posted} / failed {report.failed_accounts}")

        # 12 months of history: each account's cases spread evenly over the last 360 days.
        started = time.perf_counter()
        backdate(url, [(alias, i) for alias in services.gateways for i in range(per_account)], case_ids, per_account)
        backdating = time.perf_counter() - started
        searches = []
        for words in ("sandbox-13 bench case 249", "sandbox-7 case 100", "nothing like this", "bench status:open"):
            query = parse_search(words)
            before = routing.calls
            started = time.perf_counter()
            result = search_cases(routing, services.accounts, "CBENCH", query, names=services.cases.service_names)
            searches.append(
                {
                    "words": words,
                    "seconds": time.perf_counter() - started,
                    "calls": routing.calls - before,
                    "hits": len(result.cases),
                    "unreachable": len(result.unreachable),
                }
            )
        peak = peak_rss_mb()
        services.close()
        return {
            "accounts": accounts,
            "cases": len(case_ids),
            "calls": max(calls),
            "goal": accounts * math.ceil(per_account / 100),
            "wall": sum(walls) / len(walls),
            "warmup": warmup,
            "opening": opening,
            "rss_before": rss_before,
            "peak_rss": peak,
            "searches": searches,
            "backdating": backdating,
        }
    finally:
        sandbox.kill()
        sandbox.wait()


def backdate(url: str, jobs: list[tuple[str, int]], case_ids: list[str], per_account: int) -> None:
    """Through the sandbox's control API: case i of an account opened i × 360/N days ago."""
    now = datetime.now(UTC)

    def one(job: tuple[tuple[str, int], str]) -> None:
        (alias, i), case_id = job
        when = (now - timedelta(days=360 * i / max(1, per_account))).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        body = json.dumps({"case_id": case_id, "time_created": when}).encode()
        request = urllib.request.Request(f"{url}/_sandbox/case?account={alias}", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, zip(jobs, case_ids, strict=True)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.accounts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--cases", type=int, default=250, help="linked cases per account")
    parser.add_argument("--cycles", type=int, default=3, help="idle cycles measured")
    args = parser.parse_args(argv)
    r = measure(args.accounts, args.cases, args.cycles)
    print(json.dumps(r, indent=1, default=str))
    print(
        f"{r['accounts']} accounts × {args.cases} cases: {r['calls']} Support calls per idle cycle "
        f"(Σ ceil(N/100) = {r['goal']}), cycle {r['wall']:.2f} s (first {r['warmup']:.2f} s), "
        f"peak RSS {r['peak_rss']:.1f} MB"
    )
    for s in r["searches"]:  # type: ignore[attr-defined]
        print(f"search {s['words']!r} over 12 months: {s['seconds']:.2f} s, {s['calls']} calls, {s['hits']} hits")
    ok = r["calls"] == r["goal"] and float(r["peak_rss"]) < 150  # type: ignore[arg-type]
    print("goals met" if ok else "goals NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

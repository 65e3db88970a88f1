"""The case poller's cost per idle cycle, next to the naive one-call-per-case poller, in the same run.

    python -m bench.poll [--sizes 100,1000,5000] [--cycles 3]

For each N, a fresh child process (so peak RSS is that N's alone) starts the AWS sandbox as its own
process (`python -m bot.sandbox`, so the emulator's memory is not counted), opens N cases there,
links them in a fresh store, runs one warm-up cycle (it records each case's first sync state), then
measures `--cycles` cycles with nothing new: Support API calls, wall time, and the process's peak
RSS. The naive baseline then asks DescribeCommunications once per case, as a poller without the
batching would. Goals: ceil(N/100) calls per idle cycle; a 5,000-case cycle well within a 60 s
interval; under 150 MB RSS at 5,000 cases.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

SERVICE = "amazon-elastic-compute-cloud-linux"
CATEGORY = "general-guidance"
CHANNELS = 20  # cases spread over a few channels, as a real workspace would


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sandbox(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        # The emulated engineer would answer every case after a while: the benchmark wants quiet cases.
        [sys.executable, "-m", "bot.sandbox", "--port", str(port), "--reply-delay", "-1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/_sandbox/health", timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise SystemExit("the sandbox did not start") from None
            time.sleep(0.1)
    return process


def rss_mb() -> float:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(n: int, cycles: int) -> dict[str, float]:
    from bot.bootstrap import build_services, sandbox_gateway
    from bot.cases.service import CaseLink
    from bot.config import load_settings
    from bot.domain import NewCase

    port = free_port()
    sandbox = start_sandbox(port)
    workdir = tempfile.mkdtemp(prefix="bench-poll-")
    try:
        gateway = sandbox_gateway(f"http://127.0.0.1:{port}")
        settings = load_settings(
            {"BOT_DB_PATH": str(Path(workdir) / "bot.sqlite"), "SLACK_API_URL": "http://127.0.0.1:9/api/"},
            require_slack=False,
        )
        # Idle cycles post nothing: a Slack API URL that reaches nothing proves it.
        services = build_services(settings, gateway=gateway)
        store = services.store

        def open_case(i: int) -> str:
            return gateway.create_case(NewCase(f"bench case {i}", SERVICE, CATEGORY, "normal", f"body of case {i}"))

        with ThreadPoolExecutor(max_workers=8) as pool:
            case_ids = list(pool.map(open_case, range(n)))
        now = time.time()
        store.table("links").put_many(
            {
                f"{case_id}|C{i % CHANNELS:04d}": asdict(
                    CaseLink(case_id, f"C{i % CHANNELS:04d}", f"{now:.6f}", linked_by="UBENCH", linked_at=now)
                )
                for i, case_id in enumerate(case_ids)
            }
        )

        sync = services.poller  # a whole cycle of the poller: followed cases, then watched channels
        started = time.perf_counter()
        sync.run_cycle()  # warm-up: first sight of every case
        warmup = time.perf_counter() - started
        rss_before = rss_mb()

        calls, walls = [], []
        for _ in range(cycles):
            before = gateway.calls
            started = time.perf_counter()
            report = sync.run_cycle()
            walls.append(time.perf_counter() - started)
            calls.append(gateway.calls - before)
            if report.posted:
                raise SystemExit(f"an idle cycle posted {report.posted} messages")
        peak = peak_rss_mb()

        before = gateway.calls
        started = time.perf_counter()
        for case_id in case_ids:
            gateway.communications(case_id)
        naive_wall = time.perf_counter() - started
        naive_calls = gateway.calls - before
        return {
            "n": n,
            "calls": max(calls),
            "goal": math.ceil(n / 100),
            "wall": sum(walls) / len(walls),
            "warmup": warmup,
            "rss_before": rss_before,
            "peak_rss": peak,
            "naive_calls": naive_calls,
            "naive_wall": naive_wall,
        }
    finally:
        sandbox.kill()
        sandbox.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.poll", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,5000", help="comma-separated numbers of linked cases")
    parser.add_argument("--cycles", type=int, default=3, help="idle cycles measured per size")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child process: one size, JSON out
    args = parser.parse_args(argv)

    if args.one:
        print(json.dumps(measure(args.one, args.cycles)))
        return 0

    header = (
        f"{'N':>6} | {'calls/idle cycle':>16} | {'ceil(N/100)':>11} | {'cycle wall s':>12} | "
        f"{'first cycle s':>13} | {'peak RSS MB':>11} | {'naive calls':>11} | {'naive wall s':>12}"
    )
    print(header)
    print("-" * len(header))
    ok = True
    for size in (int(s) for s in args.sizes.split(",") if s.strip()):
        child = subprocess.run(
            [sys.executable, "-m", "bench.poll", "--one", str(size), "--cycles", str(args.cycles)],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            print(child.stdout, child.stderr, file=sys.stderr)
            return 1
        r = json.loads(child.stdout.strip().splitlines()[-1])
        ok &= r["calls"] == r["goal"] and r["wall"] < 60 and r["peak_rss"] < 150
        print(
            f"{r['n']:>6} | {r['calls']:>16} | {r['goal']:>11} | {r['wall']:>12.2f} | {r['warmup']:>13.2f} | "
            f"{r['peak_rss']:>11.1f} | {r['naive_calls']:>11} | {r['naive_wall']:>12.2f}"
        )
    print("goals met" if ok else "goals NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The cost of a Trusted Advisor digest: time to collect and to render, and AWS calls, by check count.

    python -m bench.digest [--sizes 100,500,2000] [--repeat 5]

For each N, the AWS sandbox (in this process, spoken to over real HTTP by the bot's own boto3
gateway) is given N checks; the digest is collected (DescribeTrustedAdvisorChecks and
...CheckSummaries) and rendered to Block Kit `--repeat` times against a previous state in which every
check was green (so "new since last digest" is as long as it gets). The median of each is printed,
with the Support API calls one digest makes. Baseline, same run: the naive collection that asks
DescribeTrustedAdvisorCheckSummaries once per check. Goals: at most 3 calls; render under 1 s at
2,000 checks.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.bootstrap import build_services, sandbox_gateway
from bot.config import load_settings
from bot.digest.layout import digest_blocks
from bot.digest.shaping import DigestState, build_digest
from bot.sandbox import SandboxServer

CALL_GOAL = 3
RENDER_GOAL_SECONDS = 1.0


def measure(size: int, repeat: int, sandbox: SandboxServer, db_path: Path) -> dict[str, float]:
    sandbox.set_trusted_advisor_check_count(size)
    settings = load_settings({"BOT_DB_PATH": str(db_path)}, sandbox=True, require_slack=False)
    services = build_services(settings, gateway=sandbox_gateway(sandbox.url))
    zone = ZoneInfo("Europe/Paris")
    try:
        digests = services.digests
        digests.collect()  # warm-up: connection pool, botocore's model, the templates
        collect_times, render_times, calls, blocks = [], [], [], 0
        for _ in range(repeat):
            sandbox.reset_calls()
            started = time.perf_counter()
            snapshot = digests.collect()
            collected = time.perf_counter()
            previous = DigestState({row.check_id: "ok" for row in snapshot.rows}, snapshot.collected_at)
            rendered = digest_blocks(build_digest(snapshot, previous), zone=zone)
            done = time.perf_counter()
            collect_times.append(collected - started)
            render_times.append(done - collected)
            calls.append(sum(sandbox.calls.values()))
            blocks = len(rendered)
            assert len(snapshot.rows) == size, (len(snapshot.rows), size)
        sandbox.reset_calls()
        started = time.perf_counter()
        checks = services.gateway.trusted_advisor_checks()
        for ta_check in checks:
            services.gateway.trusted_advisor_summaries([ta_check.check_id])
        naive_s = time.perf_counter() - started
        naive_calls = sum(sandbox.calls.values())
    finally:
        services.close()
    return {
        "checks": size,
        "collect_s": statistics.median(collect_times),
        "render_s": statistics.median(render_times),
        "calls": max(calls),
        "blocks": blocks,
        "naive_s": naive_s,
        "naive_calls": naive_calls,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.digest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,500,2000", help="check counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=5, help="digests per size (the median is shown)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    print(
        f"{'checks':>7} {'collect':>9} {'render':>9} {'total':>9} {'AWS calls':>10} {'blocks':>7}"
        f" | {'naive collect':>13} {'naive calls':>11}"
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(reply_delay_seconds=-1) as sandbox:
        for size in sizes:
            result = measure(size, max(1, args.repeat), sandbox, Path(tmp) / f"bench-{size}.sqlite")
            results.append(result)
            print(
                f"{result['checks']:>7} {result['collect_s'] * 1000:>7.0f}ms {result['render_s'] * 1000:>7.0f}ms "
                f"{(result['collect_s'] + result['render_s']) * 1000:>7.0f}ms {result['calls']:>10} "
                f"{result['blocks']:>7} | {result['naive_s'] * 1000:>11.0f}ms {result['naive_calls']:>11}"
            )
    worst_calls = max(r["calls"] for r in results)
    worst_render = max(r["render_s"] for r in results)
    ok = worst_calls <= CALL_GOAL and worst_render < RENDER_GOAL_SECONDS
    print(
        f"goals: at most {CALL_GOAL} AWS calls (worst {worst_calls}), render under {RENDER_GOAL_SECONDS:.0f} s "
        f"(worst {worst_render * 1000:.0f} ms): {'met' if ok else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

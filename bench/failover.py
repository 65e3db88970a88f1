"""Failover: time from SIGKILL of the lease holder to the next poll cycle completed on another replica.

    python -m bench.failover [--rounds 3] [--url postgresql://…]

Two `python -m bot serve` replicas on one PostgreSQL database (`--url`, or by default a throwaway
cluster started like the tests', durable as in production), the sandbox as AWS with one linked case,
a fake Slack. Each round kills the holder with SIGKILL at a random moment of its renewal period,
waits for the other replica's first completed poll cycle, and starts a fresh replica as the next
standby. The goal is ≤ 30 s; the lease's ttl bounds it (ttl after the holder's last renewal).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from bot.replicas import LEASE_TTL_SECONDS
from tests.support.fake_slack import BOT_TOKEN
from tests.support.replicas import Replica, start_replica, wait_for

GOAL_SECONDS = 30.0


def link_a_case(url: str, slack_api_url: str, sandbox_url: str, workdir: Path) -> None:
    """A case at the sandbox with a card in C1, so that every poll cycle has a case to follow."""
    from bot.bootstrap import build_services, sandbox_gateway
    from bot.config import load_settings
    from bot.domain import NewCase

    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": "bench",
        "SLACK_API_URL": slack_api_url,
        "DATABASE_URL": url,
        "BOT_DB_PATH": str(workdir / "unused.sqlite"),
    }
    services = build_services(load_settings(env), gateway=sandbox_gateway(sandbox_url))
    try:
        new = NewCase("Failover bench", "amazon-elastic-compute-cloud-linux", "general-guidance", "low", "hello")
        case = services.gateway.get_case(services.gateway.create_case(new))
        services.cases.post_card(case, "C1", linked_by="U1")
    finally:
        services.close()


def holder_of(replicas: list[Replica]) -> Replica | None:
    held = [replica for replica in replicas if replica.lease().get("held_here")]
    return held[0] if len(held) == 1 else None


def one_round(url: str, slack_api_url: str, sandbox_url: str, workdir: Path, replicas: list[Replica]) -> float:
    holder = wait_for(lambda: holder_of(replicas), 90, "a lease holder")
    [standby] = [replica for replica in replicas if replica is not holder]
    wait_for(lambda: standby.lease().get("holder"), 60, "the standby to see the holder")
    wait_for(lambda: holder.poll_cycles() >= 1, 60, "the holder's first cycle")
    time.sleep(random.uniform(0, LEASE_TTL_SECONDS / 3))  # anywhere in the renewal period
    killed_at = time.monotonic()
    holder.kill()
    wait_for(lambda: standby.poll_cycles() >= 1, 120, "a poll cycle on the other replica", interval=0.02)
    seconds = time.monotonic() - killed_at
    replicas.remove(holder)
    replicas.append(start_replica(url, slack_api_url, sandbox_url, workdir))
    return seconds


def measure(url: str, rounds: int, workdir: Path) -> list[float]:
    from bot.sandbox import SandboxServer
    from tests.support.fake_slack import FakeSlack

    slack = FakeSlack().start()
    sandbox = SandboxServer(reply_delay_seconds=-1, latency_seconds=0.0, state_path=None).start()
    replicas: list[Replica] = []
    try:
        link_a_case(url, slack.api_url, sandbox.url, workdir)
        replicas.extend(start_replica(url, slack.api_url, sandbox.url, workdir) for _ in range(2))
        figures = []
        for n in range(1, rounds + 1):
            figures.append(one_round(url, slack.api_url, sandbox.url, workdir, replicas))
            print(f"round {n}: {figures[-1]:.1f} s from SIGKILL to the next poll cycle", flush=True)
        return figures
    finally:
        for replica in replicas:
            replica.stop()
        sandbox.stop()
        slack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.failover", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="kills to measure")
    parser.add_argument("--url", default="", help="an empty PostgreSQL database (default: a throwaway cluster)")
    args = parser.parse_args(argv)

    cluster = None
    url = args.url
    if not url:
        from tests.support.postgres import start_cluster

        cluster = start_cluster(durable=True)
        url = cluster.create_database("failover")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            figures = measure(url, args.rounds, Path(tmp))
    finally:
        if cluster:
            cluster.destroy()
    worst = max(figures)
    print(
        f"failover (lease ttl {LEASE_TTL_SECONDS:.0f} s, renewed every {LEASE_TTL_SECONDS / 3:.1f} s):"
        f" median {statistics.median(figures):.1f} s, worst {worst:.1f} s of {len(figures)};"
        f" goal ≤ {GOAL_SECONDS:.0f} s: {'met' if worst <= GOAL_SECONDS else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

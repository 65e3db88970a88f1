"""Live updates against polling, in the same run: reply latency, and Support API calls per hour.

    python -m bench.live [--replies 40] [--window 150] [--cases 250]

1. Latency: two real bots (bootstrap.build_services, the harness of tests/support) share one AWS
   sandbox whose case events go to its own SQS queue. Bot "events" reads the queue with production
   settings (20 s long polls, poll interval 900 s); bot "polling" has no queue and polls every 60 s.
   Each follows the same cases, one channel per case. `--replies` AWS replies are written at random
   moments over `--window` seconds; for each bot: time from the write to the chat.postMessage that
   carries it (FakeSlack's clock). Goal: events p99 <= 5 s.
2. Calls per hour: a bot following `--cases` quiet linked cases; the Support API calls of one idle
   cycle (measured, after a warm-up cycle), times the cycles an hour at 900 s (events on: a quiet
   case costs no Support call between polls) and at 60 s (events off).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import statistics
import tempfile
import time
from pathlib import Path

from bot.bootstrap import EventQueue
from bot.config import EVENTS_POLL_INTERVAL_SECONDS
from bot.events.sqs import sqs_client
from bot.sandbox import SandboxServer
from bot.sync.poster import ChannelPacer
from tests.events.queues import boto_session
from tests.support.fake_slack import FakeSlack
from tests.support.harness import BotHarness
from tests.sync.helpers import open_case

POLL_SECONDS = 60


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def start_bot(sandbox: SandboxServer, slack: FakeSlack, db: Path, *, events: bool) -> BotHarness:
    if events:
        url = str(sandbox.events_queue_url)
        queue = EventQueue(sqs_client(url, session=boto_session(), endpoint_url=sandbox.url))
        env: dict[str, str | None] = {"BOT_EVENTS_QUEUE_URL": url, "POLL_INTERVAL_SECONDS": None}
        return BotHarness(slack=slack, sandbox=sandbox, db_path=db, env=env, events=queue).start()
    env = {"POLL_INTERVAL_SECONDS": str(POLL_SECONDS)}
    return BotHarness(slack=slack, sandbox=sandbox, db_path=db, env=env).start()


def posted_at(slack: FakeSlack, marker: str) -> float | None:
    for call in slack.calls("chat.postMessage"):
        if marker in json.dumps(call.params):
            return call.at
    return None


def latency(replies: int, window: float, cases: int) -> dict[str, list[float]]:
    sandbox = SandboxServer(reply_delay_seconds=-1, events=True).start()
    slacks = {"events": FakeSlack().start(), "polling": FakeSlack().start()}
    bots: dict[str, BotHarness] = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for name, slack in slacks.items():
                bots[name] = start_bot(sandbox, slack, Path(tmp) / f"{name}.sqlite", events=name == "events")
            opened = [open_case(bots["events"]) for _ in range(cases)]
            for bot in bots.values():
                for n, case in enumerate(opened):
                    bot.services.cases.post_card(case, f"C{n}", linked_by="U1")
                bot.services.sync.run_cycle()
                bot.start_workers()
            print(f"events: poll every {bots['events'].settings.poll_interval_seconds:.0f} s and the queue; "
                  f"polling: every {bots['polling'].settings.poll_interval_seconds:.0f} s")
            time.sleep(2)  # both pollers' first cycles, and the CreateCase events, are behind us
            written: dict[str, float] = {}
            moments = sorted(random.uniform(0, window) for _ in range(replies))
            started = time.time()
            for n, moment in enumerate(moments):
                time.sleep(max(0.0, started + moment - time.time()))
                marker = f"bench-reply-{n}"
                written[marker] = time.time()
                sandbox.add_aws_reply(random.choice(opened).case_id, f"{marker}: we looked at it.")
            deadline = time.time() + POLL_SECONDS + 30
            results: dict[str, list[float]] = {}
            for name, slack in slacks.items():
                while True:
                    arrived = {m: posted_at(slack, m) for m in written}
                    if all(arrived.values()) or time.time() > deadline:
                        break
                    time.sleep(0.5)
                missing = [m for m, at in arrived.items() if at is None]
                if missing:
                    print(f"{name}: {len(missing)} replies never posted")
                results[name] = [at - written[m] for m, at in arrived.items() if at is not None]
            return results
        finally:
            for bot in bots.values():
                bot.stop()
            for slack in slacks.values():
                slack.stop()
            sandbox.stop()


def calls_per_idle_cycle(cases: int) -> tuple[int, float]:
    sandbox = SandboxServer(reply_delay_seconds=-1).start()
    slack = FakeSlack().start()
    with tempfile.TemporaryDirectory() as tmp:
        bot = BotHarness(slack=slack, sandbox=sandbox, db_path=Path(tmp) / "bot.sqlite").start()
        try:
            bot.services.sync.poster.pacer = ChannelPacer(per_second=1000, burst=1000)
            for n in range(cases):
                bot.services.cases.post_card(open_case(bot), f"C{n % 20}", linked_by="U1")
            bot.services.poller.run_cycle()  # warm-up: each case's first sync state
            report = bot.services.poller.run_cycle()
            return report.aws_calls, report.seconds
        finally:
            bot.stop()
            slack.stop()
            sandbox.stop()


def show(name: str, samples: list[float]) -> None:
    print(
        f"{name:<28} n={len(samples):<4} p50={percentile(samples, 0.5):6.2f} s  p99={percentile(samples, 0.99):6.2f} s"
        f"  max={max(samples):6.2f} s  mean={statistics.fmean(samples):6.2f} s"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.live", description=__doc__.split("\n\n")[0])
    parser.add_argument("--replies", type=int, default=40, help="AWS replies written (default 40)")
    parser.add_argument("--window", type=float, default=150.0, help="seconds they are spread over (default 150)")
    parser.add_argument("--followed", type=int, default=10, help="cases both bots follow in the latency run")
    parser.add_argument("--cases", type=int, default=250, help="quiet linked cases for calls per hour (default 250)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    results = latency(args.replies, args.window, args.followed)
    show("events on (poll 900 s)", results["events"])
    show(f"polling at {POLL_SECONDS} s", results["polling"])
    goal = percentile(results["events"], 0.99) <= 5.0
    print(f"goal events p99 <= 5 s: {'met' if goal else 'NOT met'}")

    calls, seconds = calls_per_idle_cycle(args.cases)
    print(f"{args.cases} quiet linked cases: {calls} Support API calls per idle cycle ({seconds:.2f} s; "
          f"ceil(N/100) = {math.ceil(args.cases / 100)})")
    for name, interval in (("events on", EVENTS_POLL_INTERVAL_SECONDS), ("events off", POLL_SECONDS)):
        per_hour = 3600 / interval
        print(f"  {name:<11} poll every {interval:>4} s: {per_hour:5.1f} cycles/h x {calls} = "
              f"{per_hour * calls:6.0f} Support API calls per hour")


if __name__ == "__main__":
    main()

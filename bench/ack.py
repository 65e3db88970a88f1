"""Slash-command ack latency under load, next to a bare Bolt app on the same server, in the same run.

    python -m bench.ack [--concurrency 20] [--rounds 5] [--aws-latency 5]

Each round fires `concurrency` signed `/aws-support show <case>` requests at once; the bot acks, then
spends `aws-latency` seconds in the sandbox (DescribeCases and DescribeCommunications each wait that
long) before answering on the response URL. The bare app is a Bolt App whose only listener acks the
same command, served by the same waitress server with the same threads. Latency is the time from
sending the HTTP request to reading Slack's 200. Goals: bot p99 within 1.2x of the bare app's, and
nothing over 3 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from slack_bolt import Ack, App

from bot.domain import NewCase
from bot.sandbox import SandboxServer
from bot.web import make_server, make_wsgi_app
from tests.support.fake_slack import FakeSlack
from tests.support.harness import BotHarness
from tests.support.slack_requests import SlackRequests


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def fire(requests: SlackRequests, text: str, concurrency: int) -> list[float]:
    def one(_: int) -> float:
        started = time.perf_counter()
        response = requests.slash_command(text, response_url="http://127.0.0.1:9/unused")
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {response.body}")
        return elapsed

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, range(concurrency)))


class BareApp:
    """A Bolt app that only acks /aws-support, on the same server the bot uses."""

    def __init__(self, fake: FakeSlack, secret: str) -> None:
        from slack_sdk import WebClient

        app = App(
            token="xoxb-test-token",
            signing_secret=secret,
            client=WebClient(token="xoxb-test-token", base_url=fake.api_url),
            token_verification_enabled=False,
        )

        @app.command("/aws-support")
        def acknowledge(ack: Ack) -> None:
            ack()

        class NoServices:
            def health(self) -> tuple[bool, dict]:
                return True, {}

        self.server = make_server(make_wsgi_app(app, NoServices()), port=0)  # type: ignore[arg-type]
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        threading.Thread(target=self.server.run, daemon=True).start()

    def stop(self) -> None:
        self.server.close()


def summarize(name: str, samples: list[float]) -> dict[str, float]:
    figures = {
        "p50": percentile(samples, 0.50),
        "p99": percentile(samples, 0.99),
        "max": max(samples),
        "mean": statistics.fmean(samples),
    }
    print(
        f"{name:<10} n={len(samples):<4} p50={figures['p50'] * 1000:7.1f} ms  p99={figures['p99'] * 1000:7.1f} ms"
        f"  max={figures['max'] * 1000:7.1f} ms"
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--aws-latency", type=float, default=5.0)
    args = parser.parse_args(argv)

    fake = FakeSlack().start()
    sandbox = SandboxServer(reply_delay_seconds=-1).start()
    workdir = Path(tempfile.mkdtemp(prefix="bench-ack-"))
    bot = BotHarness(slack=fake, sandbox=sandbox, db_path=workdir / "bot.sqlite").start()
    bare = BareApp(fake, bot.settings.slack_signing_secret)
    bare_requests = SlackRequests(bare.url, bot.settings.slack_signing_secret)
    try:
        case_id = bot.services.gateway.create_case(
            NewCase("Benchmark case", "general-info", "general-guidance", "low", "Load test")
        )
        display_id = bot.services.gateway.get_case(case_id).display_id
        sandbox.set_latency(args.aws_latency)
        command = f"show {display_id}"
        # Warm both: Bolt's first request calls auth.test; imports and pools settle.
        fire(bot.requests, command, 2)
        fire(bare_requests, command, 2)

        bot_samples: list[float] = []
        bare_samples: list[float] = []
        for _ in range(args.rounds):
            bare_samples += fire(bare_requests, command, args.concurrency)
            bot_samples += fire(bot.requests, command, args.concurrency)

        print(
            f"{args.concurrency} concurrent `/aws-support {command}`, {args.rounds} rounds, "
            f"sandbox AWS latency {args.aws_latency:g} s per call"
        )
        bare_figures = summarize("bare Bolt", bare_samples)
        bot_figures = summarize("bot", bot_samples)
        ratio = bot_figures["p99"] / bare_figures["p99"] if bare_figures["p99"] else float("inf")
        over_3s = sum(1 for s in bot_samples if s > 3.0)
        print(f"p99 ratio bot/bare = {ratio:.2f} (goal <= 1.2); bot acks over 3 s: {over_3s} (goal 0)")
        return 0 if ratio <= 1.2 and over_3s == 0 else 1
    finally:
        sandbox.set_latency(0)
        bare.stop()
        bot.stop()
        sandbox.stop()
        fake.stop()


if __name__ == "__main__":
    sys.exit(main())

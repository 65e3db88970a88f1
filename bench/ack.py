"""Slash-command ack latency under load, next to a bare Bolt app on the same server, in the same run.

    python -m bench.ack [--concurrency 20] [--rounds 5] [--aws-latency 5]

Three processes, as in production: the bot (`python -m bot serve`, poller and scheduler included),
AWS (`python -m bot.sandbox`, every call delayed by --aws-latency seconds) and a bare Bolt app whose
only listener acks `/aws-support` (`python -m bench.bare_app`), served by the same waitress server
with the same threads. This process plays Slack: it signs the requests, fires `concurrency` at once,
and serves the Web API and response URLs the bot answers on. Each round sends
`/aws-support show <case>`: the bot acks, then spends two AWS calls (2 x latency) before answering.
Latency is the time from sending the request to reading Slack's 200.
Goals: the bot's p99 within 1.2x of the bare app's, and no ack over 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bot.bootstrap import sandbox_gateway
from bot.domain import NewCase
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import SlackRequests

SECRET = "bench-signing-secret"
TOKEN = "xoxb-test-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout} s")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def fire(requests: SlackRequests, text: str, concurrency: int) -> list[float]:
    def one(_: int) -> float:
        started = time.perf_counter()
        response = requests.slash_command(text)
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {response.body}")
        return elapsed

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, range(concurrency)))


def summarize(name: str, samples: list[float]) -> dict[str, float]:
    figures = {"p50": percentile(samples, 0.5), "p99": percentile(samples, 0.99), "max": max(samples)}
    figures["mean"] = statistics.fmean(samples)
    print(
        f"{name:<10} n={len(samples):<4} p50={figures['p50'] * 1000:7.1f} ms  p99={figures['p99'] * 1000:7.1f} ms"
        f"  max={figures['max'] * 1000:7.1f} ms"
    )
    return figures


def start_sandbox() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.sandbox", "--reply-delay", "-1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    url = process.stdout.readline().strip()  # type: ignore[union-attr]
    if not url.startswith("http"):
        process.kill()
        raise RuntimeError("the sandbox did not start")
    return process, url


def set_sandbox_latency(url: str, seconds: float) -> None:
    body = json.dumps({"latency_seconds": seconds}).encode()
    request = urllib.request.Request(f"{url}/_sandbox/config", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--aws-latency", type=float, default=5.0)
    parser.add_argument("--command", default="", help="sub-command to send instead of `show <case>`")
    args = parser.parse_args(argv)

    fake = FakeSlack().start()
    sandbox, sandbox_url = start_sandbox()
    workdir = Path(tempfile.mkdtemp(prefix="bench-ack-"))
    bot_port, bare_port = free_port(), free_port()
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
        "BOT_DB_PATH": str(workdir / "bot.sqlite"),
        "POLL_INTERVAL_SECONDS": "3600",
        "AWS_ENDPOINT_URL_SUPPORT": sandbox_url,
        "AWS_ACCESS_KEY_ID": "sandbox",
        "AWS_SECRET_ACCESS_KEY": "sandbox",
        "AWS_DEFAULT_REGION": "us-east-1",
        "LOG_LEVEL": "WARNING",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    processes = [sandbox]
    try:
        gateway = sandbox_gateway(sandbox_url)
        case_id = gateway.create_case(NewCase("Benchmark case", "general-info", "general-guidance", "low", "Load"))
        command = args.command or f"show {gateway.get_case(case_id).display_id}"

        bot_cmd = [sys.executable, "-m", "bot", "serve", "--port", str(bot_port)]
        processes.append(subprocess.Popen(bot_cmd, env=env, stderr=subprocess.DEVNULL))
        bare_cmd = [sys.executable, "-m", "bench.bare_app", "--port", str(bare_port), "--secret", SECRET]
        processes.append(subprocess.Popen(bare_cmd, env=env, stderr=subprocess.DEVNULL))
        wait_until_up(f"http://127.0.0.1:{bot_port}/healthz")
        wait_until_up(f"http://127.0.0.1:{bare_port}/healthz")
        bot = SlackRequests(f"http://127.0.0.1:{bot_port}", SECRET, response_urls=fake.response_url)
        bare = SlackRequests(f"http://127.0.0.1:{bare_port}", SECRET, response_urls=fake.response_url)

        # Warm both: Bolt's first request calls auth.test; imports and connection pools settle.
        fire(bot, command, args.concurrency)
        fire(bare, command, args.concurrency)
        # The warm-up's own after-ack work must be over before anything is measured.
        deadline = time.monotonic() + 30
        while len(fake.calls("response_url")) < args.concurrency and time.monotonic() < deadline:
            time.sleep(0.05)
        set_sandbox_latency(sandbox_url, args.aws_latency)

        bot_samples: list[float] = []
        bare_samples: list[float] = []
        for _ in range(args.rounds):
            bare_samples += fire(bare, command, args.concurrency)
            bot_round = fire(bot, command, args.concurrency)
            bot_samples += bot_round
            if os.environ.get("BENCH_DEBUG"):
                print("round", [round(s * 1000) for s in sorted(bot_round)])

        print(
            f"{args.concurrency} concurrent `/aws-support {command}` x {args.rounds} rounds, "
            f"AWS latency {args.aws_latency:g} s per call (sandbox)"
        )
        bare_figures = summarize("bare Bolt", bare_samples)
        bot_figures = summarize("bot", bot_samples)
        ratio = bot_figures["p99"] / bare_figures["p99"]
        over = sum(1 for s in bot_samples if s > 3.0)
        answered = len(fake.calls("response_url"))
        print(f"p99 ratio bot/bare = {ratio:.2f} (goal <= 1.2); bot acks over 3 s: {over} (goal 0)")
        deadline = time.monotonic() + 2 * args.aws_latency + 15
        expected = (args.rounds + 1) * args.concurrency
        while answered < expected and time.monotonic() < deadline:
            time.sleep(0.2)
            answered = len([c for c in fake.calls("response_url") if "Benchmark case" in json.dumps(c.params)])
        print(f"bot answers delivered after the ack: {answered}/{expected}")
        return 0 if ratio <= 1.2 and over == 0 else 1
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        fake.stop()


if __name__ == "__main__":
    sys.exit(main())

"""CPU per acknowledged slash command, in-process: the bot's WSGI app next to the bare Bolt app's.

    python -m bench.ack_cpu [--requests 400] [--store sqlite|postgres|both] [--profile help|show]

bench.ack measures latency under a burst; on 2 cores a burst of 20 queues on the interpreter lock,
so its p99 is about CPU per request x burst. This measures that CPU directly: the apps are built
as `python -m bot serve` builds them (the sandbox as AWS, FakeSlack as the Web API), and signed
`help` and `show` requests are pushed through each WSGI callable one at a time on this thread.
The figure is the process's CPU time (time.process_time) from the request to its response: the
ack path (the bot runs its listeners on the request thread; the bare app on Bolt's listener thread
unless --inline). Show's after-ack work waits for the response (AckFirst) and is left to finish
between measured requests, so it is not counted. `--profile` prints cProfile's top entries of the
bot on the first store for that command.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import COMMAND, sign

SECRET = "bench-signing-secret"
TOKEN = "xoxb-test-token"
Wsgi = Callable[..., Iterable[bytes]]


def command_environ(text: str, response_url: str, n: int) -> dict[str, Any]:
    fields = {
        "token": "t",
        "team_id": "T1",
        "team_domain": "bench",
        "channel_id": "C1",
        "channel_name": "bench",
        "user_id": "U1",
        "user_name": "u1",
        "command": COMMAND,
        "text": text,
        "api_app_id": "A1",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": f"{n}.{time.time_ns()}.bench",
    }
    body = urlencode(fields).encode()
    timestamp = str(int(time.time()))
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/slack/events",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_SLACK_REQUEST_TIMESTAMP": timestamp,
        "HTTP_X_SLACK_SIGNATURE": sign(SECRET, timestamp, body),
        "wsgi.input": io.BytesIO(body),
    }


def call(wsgi: Wsgi, environ: dict[str, Any]) -> bytes:
    status: list[str] = []
    body = b"".join(wsgi(environ, lambda s, headers, exc_info=None: status.append(s)))
    if not status or not status[0].startswith("200"):
        raise RuntimeError(f"{status} {body[:200]!r}")
    return body


def cpu_per_request(apps: dict[str, tuple[Wsgi, Callable[[], None]]], text: str, fake: FakeSlack, count: int) -> dict:
    """Per app: (mean, median) ms of CPU per request, after a warm-up of 20 each. The apps take
    turns request by request, so that whatever else the machine does falls on all of them alike."""
    for wsgi, settle in apps.values():
        for n in range(20):
            call(wsgi, command_environ(text, fake.response_url(), n))
        settle()
    spent: dict[str, list[float]] = {name: [] for name in apps}
    walls: dict[str, list[float]] = {name: [] for name in apps}
    for n in range(count):
        for name, (wsgi, settle) in apps.items():
            environ = command_environ(text, fake.response_url(), n)
            started, wall = time.process_time(), time.perf_counter()
            call(wsgi, environ)
            spent[name].append(time.process_time() - started)
            walls[name].append(time.perf_counter() - wall)
            settle()
    return {
        name: (statistics.fmean(s) * 1000, statistics.median(s) * 1000, statistics.median(walls[name]) * 1000)
        for name, s in spent.items()
    }


class Inline(Executor):
    """Runs a listener on the submitting thread, as the bot does (--inline, for the bare app)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def build_bot(store: str, fake: FakeSlack, sandbox_url: str, workdir: Path, database_url: str | None) -> Any:
    from bot import render
    from bot.app import build_app
    from bot.bootstrap import build_services, sandbox_gateway
    from bot.config import load_settings
    from bot.web import make_wsgi_app

    env = {
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
        "BOT_DB_PATH": str(workdir / f"{store}.sqlite"),
        "POLL_INTERVAL_SECONDS": "3600",
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    settings = load_settings(env)
    services = build_services(settings, gateway=sandbox_gateway(sandbox_url), aws_endpoint_url=sandbox_url)
    render.warm_up()
    return services, make_wsgi_app(build_app(services), services)


def main(argv: list[str] | None = None) -> int:
    import logging

    from bench.ack import postgres_url
    from bench.bare_app import build as build_bare
    from bench.bare_app import wsgi_app as bare_wsgi
    from bot.bootstrap import SandboxOptions, sandbox_gateway, start_sandbox
    from bot.domain import NewCase

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--profile", choices=["help", "show"])
    parser.add_argument("--database-url")
    parser.add_argument("--inline", action="store_true", help="the bare app runs listeners on the request thread too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    sys.setswitchinterval(0.001)  # as `python -m bot serve`

    fake = FakeSlack().start()
    sandbox = start_sandbox(SandboxOptions(reply_delay_seconds=-1, events=False))
    workdir = Path(tempfile.mkdtemp(prefix="bench-ack-cpu-"))
    cleanup: list[Callable[[], None]] = [fake.stop, sandbox.stop]
    try:
        gateway = sandbox_gateway(sandbox.url)
        case_id = gateway.create_case(NewCase("Benchmark case", "general-info", "general-guidance", "low", "Load"))
        commands = {"help": "help", "show": f"show {gateway.get_case(case_id).display_id}"}
        os.environ.update(SLACK_API_URL=fake.api_url, SLACK_BOT_TOKEN=TOKEN)
        bare = build_bare(SECRET)
        if args.inline:
            bare.listener_runner.listener_executor = Inline()
        apps: dict[str, tuple[Wsgi, Callable[[], None]]] = {"bare": (bare_wsgi(bare), lambda: None)}
        for store in ["sqlite", "postgres"] if args.store == "both" else [args.store]:
            url = None
            if store == "postgres":
                url, cluster = postgres_url(args.database_url)
                if cluster is not None:
                    cleanup.append(cluster.destroy)
            services, wsgi = build_bot(store, fake, sandbox.url, workdir, url)
            cleanup.insert(0, services.close)
            apps[store] = (wsgi, lambda services=services: services.work.wait_idle(timeout=30))

        print("ms CPU per request, mean / median (bot/bare means); wall ms per request, median")
        for name, text in commands.items():
            figures = cpu_per_request(apps, text, fake, args.requests)
            bare_mean = figures["bare"][0]
            cells = [
                f"{app} {mean:5.2f} / {median:5.2f} ({mean / bare_mean:4.2f}x) wall {wall:5.1f}"
                for app, (mean, median, wall) in figures.items()
            ]
            print(f"{name:<5} | " + " | ".join(cells))
        if args.profile:
            app_name = next(name for name in apps if name != "bare")
            profiler = cProfile.Profile()
            profiler.enable()
            cpu_per_request({app_name: apps[app_name]}, commands[args.profile], fake, args.requests)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(os.environ.get("SORT", "tottime")).print_stats(
                int(os.environ.get("TOP", "40"))
            )
            print(out.getvalue())
        return 0
    finally:
        for step in cleanup:
            step()


if __name__ == "__main__":
    sys.exit(main())

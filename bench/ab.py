"""Ack latency of several apps, or of the bot at several commits, measured in the same run.

    python -m bench.ab [--rounds 30] [--commands help,show] APP [APP ...]

APP is `bare` (bench.bare_app), `sqlite` or `postgres` (the bot on that store), optionally `@REV` for
the bot as it was at a git revision (checked out in a temporary worktree): for instance
`python -m bench.ab bare postgres@HEAD~3 postgres bare`. Each round sends every app a burst of 20
signed `/aws-support <command>` in turn (a new order each round), as bench.ack does, AWS at 5 s per
call. One round's acks move together when this machine stalls, so a p99 is decided by an app's
slowest round; p50, p90 and the rounds whose slowest ack passed 40 ms compare apps more steadily.
Name `bare` twice to see the spread between equals.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.ack import (
    SECRET,
    app_env,
    benchmark_commands,
    fire,
    free_port,
    percentile,
    set_sandbox_latency,
    start_sandbox,
    stop_all,
    wait_until_up,
)
from bench.slack_process import SlackProcess
from tests.support.slack_requests import SlackRequests

SLOW_ROUND_SECONDS = 0.040
REPO = Path(__file__).resolve().parent.parent


def checkout(revision: str, into: Path) -> Path:
    """The repository at `revision` in a temporary worktree (removed by `remove_checkouts`)."""
    path = into / revision.replace("/", "_")
    if not path.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), revision], check=True)
    return path


def remove_checkouts(paths: list[Path]) -> None:
    for path in paths:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)], check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("apps", nargs="+", help="bare | sqlite[@REV] | postgres[@REV]")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--commands", default="help,show")
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args(argv)
    commands = args.commands.split(",")
    for app in args.apps:
        kind = app.split("@", 1)[0]
        if kind not in ("bare", "sqlite", "postgres") or (kind == "bare" and "@" in app):
            parser.error(f"unknown app {app!r}: bare, sqlite[@REV] or postgres[@REV]")

    fake = SlackProcess()
    sandbox, sandbox_url = start_sandbox()
    workdir = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    processes: list[subprocess.Popen] = [sandbox]
    checkouts: list[Path] = []
    cluster = None
    try:
        texts = benchmark_commands(sandbox_url)
        apps: dict[str, SlackRequests] = {}
        for number, app in enumerate(args.apps):
            kind, _, revision = app.partition("@")
            env = app_env(fake, sandbox_url, workdir / f"bot{number}.sqlite")
            code = REPO
            if revision:
                code = checkout(revision, workdir)
                if code not in checkouts:  # two apps at one revision share its checkout
                    checkouts.append(code)
                env["PYTHONPATH"] = str(code)
            if kind == "postgres":
                if cluster is None:
                    from tests.support.postgres import start_cluster

                    cluster = start_cluster(durable=True)
                env["DATABASE_URL"] = cluster.create_database(f"bench{number}")
            port = free_port()
            command = (
                [sys.executable, "-m", "bench.bare_app", "--port", str(port), "--secret", SECRET]
                if kind == "bare"
                else [sys.executable, "-m", "bot", "serve", "--port", str(port)]
            )
            # Run from the checkout: `python -m` puts the working folder first on sys.path, before
            # PYTHONPATH, so from anywhere else every revision ran the code of the working folder.
            processes.append(subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL, cwd=code))
            wait_until_up(f"http://127.0.0.1:{port}/healthz")
            apps[f"{number}:{app}"] = SlackRequests(f"http://127.0.0.1:{port}", SECRET, response_urls=fake.response_url)

        for command in commands:  # warm: Bolt's first request, imports, connection pools
            for requests in apps.values():
                fire(requests, texts[command], args.concurrency)
        time.sleep(2)  # the warm-up's after-ack work
        set_sandbox_latency(sandbox_url, 5.0)

        names = list(apps)
        print(f"{args.concurrency} concurrent `/aws-support <command>` x {args.rounds} rounds per app, in turn; ms")
        print(f"{'':<6} {'app':<28} {'p50':>6} {'p90':>6} {'p99':>7} {'mean':>6}  rounds > 40 ms")
        for command in commands:
            samples: dict[str, list[float]] = {name: [] for name in names}
            slow: dict[str, int] = dict.fromkeys(names, 0)
            for turn in range(args.rounds):
                shift = turn % len(names)
                for name in names[shift:] + names[:shift]:
                    burst = fire(apps[name], texts[command], args.concurrency)
                    samples[name] += burst
                    slow[name] += max(burst) > SLOW_ROUND_SECONDS
            for name in names:
                acks = samples[name]
                figures = [percentile(acks, q) * 1000 for q in (0.5, 0.9, 0.99)]
                mean = statistics.fmean(acks) * 1000
                cells = " ".join(f"{value:6.1f}" for value in figures)
                print(f"{command:<6} {name:<28} {cells} {mean:6.1f}  {slow[name]:3d} of {args.rounds}")
        return 0
    finally:
        stop_all(processes)
        fake.stop()
        if cluster is not None:
            cluster.destroy()
        remove_checkouts(checkouts)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

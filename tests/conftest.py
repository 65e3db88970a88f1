"""Fixtures for every test: the AWS sandbox, the fake Slack Web API and a running bot (see tests/support)."""

from __future__ import annotations

import compileall
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_slack import FakeSlack
from tests.support.harness import BotHarness


def _keep_loopback_off_proxies() -> None:
    # The bot's WebClient and boto3 honour HTTP(S)_PROXY; tests only ever talk to 127.0.0.1.
    for name in ("NO_PROXY", "no_proxy"):
        hosts = [h for h in os.environ.get(name, "").split(",") if h]
        os.environ[name] = ",".join(hosts + [h for h in ("127.0.0.1", "localhost") if h not in hosts])


_keep_loopback_off_proxies()


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the run's one controller, before any xdist worker starts
        _cache_bytecode(config.rootpath, workers=config.getoption("numprocesses", None) or 0)


def _cache_bytecode(root: Path, workers: object) -> None:
    """Writes the bytecode every worker and every bot process of the run would otherwise compile again.

    The suite is CPU-bound on 2 cores. Where PYTHONDONTWRITEBYTECODE is set (this project's machines set
    it), each xdist worker rewrote the asserts of every test module (4 s of CPU each, 7 workers) and
    every `python -m bot` a test starts compiled bot/ (0.3 s, about 120 of them): a fifth of the run's
    CPU. Both read a cached .pyc whatever that variable says, so it is written once, here.
    """
    compileall.compile_dir(root / "bot", quiet=2)
    if workers and _stale_rewrites(root / "tests"):
        # One collection in one process writes the rewritten test modules (and whatever they import).
        env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
        command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-n", "0", "-p", "no:cacheprovider"]
        subprocess.run([*command, str(root / "tests")], cwd=root, env=env, capture_output=True, check=False)


def _stale_rewrites(tests: Path) -> bool:
    tail = f".{sys.implementation.cache_tag}-pytest-{pytest.__version__}.pyc"
    for source in [*tests.rglob("test_*.py"), *tests.rglob("conftest.py")]:
        cached = source.parent / "__pycache__" / (source.stem + tail)
        if not cached.exists() or cached.stat().st_mtime < source.stat().st_mtime:
            return True
    return False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that mostly wait (a wall-clock minute, a killed process's lease) start first, the longest
    first, each followed by a quick one: xdist deals tests out two at a time (pyproject's addopts), so each
    worker gets one long wait and the others run the rest meanwhile, rather than one worker waiting
    alone at the end of the run. The order is the same in every worker, as xdist requires."""

    def expected_seconds(item: pytest.Item) -> float:
        marker = item.get_closest_marker("slow")
        return float(marker.kwargs.get("seconds", 10)) if marker else 0.0

    slow = sorted((i for i in items if expected_seconds(i)), key=expected_seconds, reverse=True)
    quick = [i for i in items if not expected_seconds(i)]
    ordered: list[pytest.Item] = []
    for item in slow:
        ordered.append(item)
        if quick:
            ordered.append(quick.pop(0))
    items[:] = ordered + quick


@pytest.fixture
def sandbox() -> Iterator[Any]:
    """The AWS Support emulator with its engineer off (reply_delay_seconds=-1): tests call add_aws_reply."""
    from bot.sandbox import SandboxServer

    server = SandboxServer(reply_delay_seconds=-1, latency_seconds=0.0, state_path=None).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    try:
        yield fake
    finally:
        fake.stop()
    # Every surface a test made the bot draw went through Slack's rules and slack_sdk's models.
    assert fake.invalid_payloads == [], fake.invalid_payloads


@pytest.fixture
def bot_factory(fake_slack: FakeSlack, sandbox: Any, tmp_path: Path) -> Iterator[Callable[..., BotHarness]]:
    """make(workers=False, env=None, db_path=None, aws_attempts=None, events=None) -> a started BotHarness; all are
    stopped at teardown.

    Start a second bot on the first one's `db_path` (after `first.stop()`) to test a restart.
    """
    started: list[BotHarness] = []

    def make(
        *,
        workers: bool = False,
        env: dict[str, str | None] | None = None,
        db_path: str | Path | None = None,
        aws_attempts: int | None = None,
        events: Any = None,
    ) -> BotHarness:
        path = db_path or tmp_path / f"bot{len(started) or ''}.sqlite"
        harness = BotHarness(
            slack=fake_slack,
            sandbox=sandbox,
            db_path=path,
            env=env,
            workers=workers,
            aws_attempts=aws_attempts,
            events=events,
        )
        started.append(harness)
        return harness.start()

    try:
        yield make
    finally:
        for harness in reversed(started):
            harness.stop()


@pytest.fixture
def bot(bot_factory: Callable[..., BotHarness]) -> BotHarness:
    """A running bot, background workers not started (drive the poller yourself)."""
    return bot_factory()


@pytest.fixture
def bot_with_workers(bot_factory: Callable[..., BotHarness]) -> BotHarness:
    """A running bot with its poller and digest scheduler started, as `python -m bot` runs."""
    return bot_factory(workers=True)

"""Fixtures for every test: the AWS sandbox, the fake Slack Web API and a running bot (see tests/support)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import py_compile
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
        workers = config.getoption("numprocesses", None) or 0
        _cache_bytecode(config.rootpath, [arg.split("::")[0] for arg in config.args], workers=workers)


# The collection that writes the rewritten test modules; a module stuck at import must not stop the run.
COLLECT_TIMEOUT_SECONDS = 60


def _cache_bytecode(root: Path, paths: list[str], workers: object) -> None:
    """Writes the bytecode every worker and every bot process of the run would otherwise compile again.

    The suite is CPU-bound on 2 cores. Where PYTHONDONTWRITEBYTECODE is set (this project's machines set
    it), each xdist worker rewrote the asserts of every test module (4 s of CPU each, 7 workers) and
    every `python -m bot` a test starts compiled bot/ (0.3 s, about 120 of them): a fifth of the run's
    CPU. Both read a cached .pyc whatever that variable says, so it is written once, here. Every .pyc is
    checked against its source's hash, never its mtime: an edit never runs old code.
    """
    if not os.access(root / "tests", os.W_OK):
        return  # a read-only checkout: nothing can be kept, each process compiles as before
    for folder in ("bot", "bench", "tests"):
        for source in (root / folder).rglob("*.py"):
            if not (source.name.startswith("test_") or source.name == "conftest.py"):  # pytest's to rewrite
                _compile_checked(source)
    stale = [Path(path) for path in paths if _stale_rewrites(Path(path))]
    if workers and stale:
        # One collection in one process writes the rewritten test modules the run asked for.
        env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
        command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-n", "0", "-p", "no:cacheprovider"]
        # Timed out: each worker collects (and meets the stuck import) itself, as without this cache.
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(
                [*command, *map(str, stale)],
                cwd=root,
                env=env,
                capture_output=True,
                check=False,
                timeout=COLLECT_TIMEOUT_SECONDS,
            )


def _compile_checked(source: Path) -> None:
    cached = Path(importlib.util.cache_from_source(str(source)))
    try:
        header = cached.read_bytes()[:16] if cached.exists() else b""
        if header[4:8] == CHECKED_HASH_FLAGS and header[8:16] == importlib.util.source_hash(source.read_bytes()):
            return
        py_compile.compile(str(source), str(cached), invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    except (OSError, py_compile.PyCompileError):
        pass  # the import compiles it, as without this cache


CHECKED_HASH_FLAGS = (0b11).to_bytes(4, "little")  # PEP 552: hash-based, checked at every import


def _stale_rewrites(path: Path) -> bool:
    """Whether a test module under `path` lacks its rewritten .pyc, or has one of other text than its
    source (pytest checks its .pycs by the source's hash, as here)."""
    tail = f".{sys.implementation.cache_tag}-pytest-{pytest.__version__}.pyc"
    path = path.resolve()
    sources = [path] if path.is_file() else [*path.rglob("test_*.py"), *path.rglob("conftest.py")]
    for source in sources:
        cached = source.parent / "__pycache__" / (source.stem + tail)
        try:
            if cached.read_bytes()[8:16] != importlib.util.source_hash(source.read_bytes()):
                return True
        except OSError:
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

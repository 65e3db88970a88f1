"""A bot serving three emulated accounts, for the end-to-end tests of several accounts.

- `main` (123456789012, the sandbox's management account): every channel;
- `prod` (200000000002): only channel CPROD;
- `stage` (200000000003): every channel; tests deny its AssumeRole to make it unreachable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.domain import Case, NewCase
from tests.support.fake_slack import FakeSlack
from tests.support.harness import BotHarness, write_accounts_file

ACCOUNTS = [
    {"alias": "main", "id": "123456789012"},
    {"alias": "prod", "id": "200000000002", "channels": ["CPROD"]},
    {"alias": "stage", "id": "200000000003"},
]
ALIAS_OF = {"main": "sandbox", "prod": "sandbox-2", "stage": "sandbox-3"}  # the sandbox's own names
SERVICE, CATEGORY = "amazon-elastic-compute-cloud-linux", "other"


@pytest.fixture
def sandbox3() -> Iterator[Any]:
    from bot.sandbox import SandboxServer

    server = SandboxServer(reply_delay_seconds=-1, latency_seconds=0.0, state_path=None, accounts=3).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def accounts_bot_factory(fake_slack: FakeSlack, sandbox3: Any, tmp_path: Path) -> Iterator[Callable[..., BotHarness]]:
    started: list[BotHarness] = []

    def make(*, workers: bool = False, env: dict[str, str | None] | None = None) -> BotHarness:
        path = write_accounts_file(tmp_path / "accounts.toml", ACCOUNTS)
        harness = BotHarness(
            slack=fake_slack,
            sandbox=sandbox3,
            db_path=tmp_path / f"bot{len(started) or ''}.sqlite",
            env={"BOT_ACCOUNTS_FILE": path, **(env or {})},
            workers=workers,
        )
        started.append(harness)
        return harness.start()

    try:
        yield make
    finally:
        for harness in reversed(started):
            harness.stop()


@pytest.fixture
def accounts_bot(accounts_bot_factory: Callable[..., BotHarness]) -> BotHarness:
    return accounts_bot_factory()


def open_case_in(bot: BotHarness, alias: str, subject: str = "Instance unreachable", body: str = "It stopped.") -> Case:
    """A case opened outside Slack in account `alias`, straight through that account's gateway."""
    gateway = bot.services.gateways[alias]
    case_id = gateway.create_case(NewCase(subject, SERVICE, CATEGORY, "high", body))
    return gateway.get_case(case_id)

"""Fixtures for several accounts: a sandbox emulating three, and the bot's sessions into them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from bot.accounts.config import Account
from bot.accounts.sessions import AccountSessions
from bot.aws.session import new_session
from bot.sandbox import SandboxServer
from tests.accounts.e2e import ACCOUNTS
from tests.support.fake_slack import FakeSlack
from tests.support.harness import BotHarness, write_accounts_file

ROLE = "arn:aws:iam::{}:role/AwsSupportBot"


@pytest.fixture
def sandbox3() -> Iterator[SandboxServer]:
    """Accounts sandbox (the bot's own), sandbox-2 and sandbox-3; the engineers stay silent."""
    server = SandboxServer(reply_delay_seconds=None, accounts=3).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def base_session() -> boto3.session.Session:
    """The bot's own credentials (the sandbox's management account)."""
    return new_session(aws_access_key_id="sandbox", aws_secret_access_key="s", region_name="us-east-1")


@pytest.fixture
def sessions(sandbox3: SandboxServer, base_session: boto3.session.Session) -> AccountSessions:
    # botocore judges expiry by the sandbox's clock, which tests move forward.
    return AccountSessions(base_session=base_session, sts_endpoint_url=sandbox3.url, time_fetcher=sandbox3.clock.now)


def member(alias: str, account_id: str, **fields: object) -> Account:
    return Account(alias=alias, id=account_id, role_arn=ROLE.format(account_id), **fields)  # type: ignore[arg-type]


@pytest.fixture
def accounts() -> list[Account]:
    return [
        Account(alias="sandbox", id="123456789012"),
        member("sandbox-2", "200000000002", channels=frozenset({"CPROD"})),
        member("sandbox-3", "200000000003"),
    ]


@pytest.fixture
def accounts_sandbox() -> Iterator[Any]:
    """Three accounts (sandbox, sandbox-2, sandbox-3) for a bot; the engineers answer only when told."""
    from bot.sandbox import SandboxServer

    server = SandboxServer(reply_delay_seconds=-1, latency_seconds=0.0, state_path=None, accounts=3).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def accounts_bot_factory(
    fake_slack: FakeSlack, accounts_sandbox: Any, tmp_path: Path
) -> Iterator[Callable[..., BotHarness]]:
    started: list[BotHarness] = []

    def make(
        *, workers: bool = False, env: dict[str, str | None] | None = None, db_path: Path | None = None
    ) -> BotHarness:
        path = write_accounts_file(tmp_path / "accounts.toml", ACCOUNTS)
        harness = BotHarness(
            slack=fake_slack,
            sandbox=accounts_sandbox,
            # The same db_path twice: a restart of the bot that keeps its state.
            db_path=db_path or tmp_path / f"bot{len(started) or ''}.sqlite",
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

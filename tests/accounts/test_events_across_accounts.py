"""Live updates with several accounts, end to end: the sandbox's queue carries every emulated account's
case events, as an organisation-wide EventBridge rule would, and the bot serves two of its three accounts.

An event of an account the bot serves is handled in that account; one of an account it does not serve
(forwarded by a rule covering the whole organisation, or of an account taken out of the file) is left
alone: no AWS call is made for it, in its account or in the default one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.accounts.config import Account
from bot.accounts.directory import AccountDirectory
from bot.accounts.routing import AccountGateways
from bot.bootstrap import sandbox_gateway
from bot.sandbox import SandboxServer
from tests.accounts.conftest import ROLE
from tests.accounts.e2e import open_case_in
from tests.accounts.test_watch_across_accounts import carded, watching
from tests.events.live import LiveQueue
from tests.events.test_live import consumer, running
from tests.sandbox.helpers import open_case, wait_until
from tests.sandbox.test_accounts import assume, assumed_client
from tests.support.harness import BotHarness, write_accounts_file

SERVED = [{"alias": "main", "id": "123456789012"}, {"alias": "stage", "id": "200000000003"}]
UNSERVED_ID = "200000000002"  # the sandbox's `sandbox-2`, left out of the bot's accounts file


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """Three accounts whose case events all land in the first one's queue; the engineers stay silent."""
    server = SandboxServer(reply_delay_seconds=-1, accounts=3, events=True).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def live(sandbox: SandboxServer) -> Iterator[LiveQueue]:
    queue = LiveQueue("sandbox", sandbox)
    try:
        yield queue
    finally:
        queue.close()


@pytest.fixture
def bot(bot_factory: Any, live: LiveQueue, tmp_path: Path) -> BotHarness:
    """Serving `main` and `stage`, watching C1 for every new case of both, reading the sandbox's queue."""
    accounts_file = write_accounts_file(tmp_path / "accounts.toml", SERVED)
    harness = bot_factory(env=live.env(BOT_ACCOUNTS_FILE=accounts_file), events=live.events())
    watching(harness)
    running(harness, live)
    return harness


def support_calls(sandbox: SandboxServer) -> dict[str, int]:
    """The Support calls the sandbox's first account answered, by operation (the queue's left out)."""
    return {operation: count for operation, count in sandbox.calls.items() if not operation.startswith("sqs:")}


def test_an_event_of_an_account_the_bot_does_not_serve_costs_no_aws_call(bot: BotHarness, live: LiveQueue) -> None:
    handled = consumer(bot).health()["messages_handled"]
    calls = bot.services.gateway.calls
    default_account_calls = support_calls(bot.sandbox)
    posted = len(bot.slack.messages("C1"))

    case_id = open_case(assumed_client(bot.sandbox, assume(bot.sandbox, UNSERVED_ID)), subject="Someone else's case")
    assert case_id.startswith(f"case-{UNSERVED_ID}-")

    assert wait_until(lambda: consumer(bot).health()["messages_handled"] > handled, timeout=10)
    assert wait_until(live.drained, timeout=10), live.counts()
    assert bot.services.gateway.calls == calls
    assert support_calls(bot.sandbox) == default_account_calls
    assert len(bot.slack.messages("C1")) == posted


def test_an_event_of_a_served_account_is_handled_in_that_account(bot: BotHarness, live: LiveQueue) -> None:
    open_case_in(bot, "stage", subject="Stage new case")

    assert wait_until(lambda: "Stage new case" in carded(bot, "C1"), timeout=10)
    assert wait_until(live.drained, timeout=10), live.counts()
    assert bot.services.poller.health()["cycles"] == 1  # the event carded it, not a poll


def test_an_unmatched_event_goes_to_the_router_while_the_own_accounts_id_is_unknown(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.accounts import directory as directory_module

    monkeypatch.setattr(directory_module, "STS_RETRY_SECONDS", 0.0)  # asked again at once, not a minute later
    sts_answers = ["", "123456789012"]  # STS unreachable at first, then answering

    def own_account_id() -> str:
        return sts_answers.pop(0) if len(sts_answers) > 1 else sts_answers[0]

    accounts = [
        Account(alias="main", id=""),
        Account(alias="stage", id="200000000003", role_arn=ROLE.format("200000000003")),
    ]
    directory = AccountDirectory(accounts, own_account_id=own_account_id)
    main, stage = sandbox_gateway(sandbox.url), sandbox_gateway(sandbox.url)
    routing = AccountGateways(directory, {"main": main, "stage": stage})

    # `main` may be the unmatched account: the router, which routes by case ID, rather than dropping it.
    assert routing.serving(UNSERVED_ID) is routing
    assert routing.serving("") is routing  # an event naming no account
    assert routing.serving("200000000003") is routing  # served: routed by its case ID

    # STS has answered: every served account's ID is known, and the unmatched one is nobody's here.
    assert routing.serving("123456789012") is routing
    assert routing.serving(UNSERVED_ID) is None
    assert routing.serving("") is routing

"""Review 33 of 1a8504d: an event of an account the bot does not serve costs no AWS call - with several
accounts. A bot of one account (no accounts file, or a file naming one account) still builds its handler
with `single_gateway(gateway)` and no account ID: every account's event is "served", and a CreateCase
forwarded by an organisation-wide rule costs a DescribeCases (CaseIdNotFound) while a channel watches."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.events.consumer import EventConsumer
from bot.events.envelope import CaseEvent
from bot.events.outcome import Outcome
from bot.sandbox import SandboxServer
from tests.accounts.test_watch_across_accounts import watching
from tests.events.live import LiveQueue

FOREIGN = "999999999999"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    server = SandboxServer(reply_delay_seconds=-1, events=True).start()
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


def support_calls(sandbox: SandboxServer) -> dict[str, int]:
    return {op: n for op, n in sandbox.calls.items() if not op.startswith("sqs:")}


def test_a_one_account_bot_pays_for_another_accounts_event(bot_factory, live):
    bot = bot_factory(env=live.env(), events=live.events())
    watching(bot)
    [consumer] = [w for w in bot.services.background if isinstance(w, EventConsumer)]
    before = support_calls(bot.sandbox)
    event = CaseEvent(
        event_id="e1",
        account=FOREIGN,
        region="us-east-1",
        time=None,
        case_id=f"case-{FOREIGN}-muen-2026-0000000000000001",
        display_id="1",
        communication_id="",
        event_name="CreateCase",
        origin="",
    )
    assert consumer.handler(event) is Outcome.DONE
    assert support_calls(bot.sandbox) == before, "an unserved account's event cost a Support call"


def test_the_first_event_of_an_account_the_bot_does_not_serve_is_logged_as_a_warning(bot_factory, live, caplog):
    # Review34: an accounts file whose ID is not the credentials' own drops every live update of the bot's
    # own account; said once at WARNING, so that someone notices, then at INFO.
    bot = bot_factory(env=live.env(), events=live.events())
    [consumer] = [w for w in bot.services.background if isinstance(w, EventConsumer)]

    def event(n: int) -> CaseEvent:
        case_id = f"case-{FOREIGN}-muen-2026-000000000000000{n}"
        return CaseEvent(f"e{n}", FOREIGN, "us-east-1", None, case_id, str(n), "", "CreateCase", "")

    with caplog.at_level("INFO", logger="bot.sync.events"):
        assert consumer.handler(event(1)) is Outcome.DONE
        assert consumer.handler(event(2)) is Outcome.DONE
    levels = [r.levelname for r in caplog.records if FOREIGN in r.getMessage()]
    assert levels == ["WARNING", "INFO"]

"""Shared steps of the case tests: open a case at AWS, link it, find its card."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bot.domain import Case, NewCase
from tests.support.blocks import texts_in

SERVICE = "amazon-elastic-compute-cloud-linux"
CATEGORY = "general-guidance"


def open_case_at_aws(bot: Any, subject: str = "Instance unreachable", body: str = "It stopped answering.") -> Case:
    """A case opened outside Slack (the console), straight through the gateway."""
    case_id = bot.services.gateway.create_case(NewCase(subject, SERVICE, CATEGORY, "high", body))
    return bot.services.gateway.get_case(case_id)


def link_case(bot: Any, case: Case, user: str = "U1", channel: str = "C1") -> dict[str, Any]:
    """`/aws-support link` and the card it posts; returns the card message as Slack stored it."""
    bot.command(f"link {case.display_id}", user=user, channel=channel)
    bot.wait_for_response()
    [post] = bot.slack.wait_for(
        "chat.postMessage", lambda c: c.params.get("channel") == channel and c.params.get("blocks") is not None
    )
    return bot.slack.message(channel, post.response["ts"])


def card_text(message: dict[str, Any]) -> str:
    """Every text of a message's blocks, joined, for assertions on what a person sees."""
    return "\n".join(texts_in(message.get("blocks") or []))


def action_ids(message: dict[str, Any]) -> list[str]:
    return [
        element.get("action_id")
        for block in message.get("blocks") or []
        if block.get("type") == "actions"
        for element in block.get("elements", [])
    ]


def communications(bot: Any, case_id: str) -> list[Any]:
    return bot.services.gateway.communications(case_id)


def attributed(name: str, key: str, text: str) -> str:
    """The body AWS gets for a reply noted under journal `key` (its reference in the attribution)."""
    from bot.store.journal import reference

    return f"{name} via Slack · ref {reference(key)}: {text}"


def thread_key(channel: str, message_ts: str) -> str:
    """The journal key of a person's message in a case thread."""
    return f"reply:{channel}:{message_ts}"


def sent_texts(bot: Any, case_id: str) -> list[str]:
    """What reached AWS from Slack, in order, without the attribution line."""
    return [c.body.split(": ", 1)[1] for c in communications(bot, case_id) if " via Slack" in c.body]


def fast_retries(bot: Any, deadline_seconds: float = 1.0) -> None:
    """Retries wait milliseconds and give up after `deadline_seconds` (the bot waits minutes)."""
    from bot.work import RetryPolicy

    bot.services.cases.runner.retry = RetryPolicy(
        deadline_seconds=deadline_seconds, first_wait_seconds=0.05, max_wait_seconds=0.2
    )
    # AWS is given half a second, not a minute, to finish a part whose answer was lost.
    bot.services.cases.replies.unclear_settle_seconds = min(0.5, deadline_seconds / 4)
    bot.services.cases.intake.unclear_settle_seconds = min(0.5, deadline_seconds / 4)


def linked_for_ana(bot: Any) -> tuple[Any, dict]:
    """A case opened at AWS and linked in C1, with U1 known to Slack as Ana Lima (ana): (case, card)."""
    bot.slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    case = open_case_at_aws(bot)
    return case, link_case(bot, case)


def a_two_part_text() -> str:
    """Words a reply splits into two parts (AWS takes at most MAX_BODY characters at once)."""
    from bot.cases.records import MAX_BODY

    return ("word " * (MAX_BODY // 5 + 200)).strip()


@contextmanager
def parts_after_the_first_failing(bot: Any, error: Exception) -> Iterator[list[tuple]]:
    """AWS takes a reply's first part, and every later AddCommunicationToCase fails with `error`."""
    gateway = bot.services.cases.replies.gateway
    real_add = gateway.add_communication
    calls: list[tuple] = []

    def add_communication(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) >= 2:
            raise error
        return real_add(*args, **kwargs)

    gateway.add_communication = add_communication
    try:
        yield calls
    finally:
        del gateway.add_communication

"""Shared steps of the case tests: open a case at AWS, link it, find its card."""

from __future__ import annotations

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

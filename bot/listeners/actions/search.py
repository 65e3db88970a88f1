"""Buttons of `/aws-support search` results: Next (the following 5) and "Link here" (the `link` command)."""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import Ack, App, BoltContext, Respond

from bot import render
from bot.listeners.boundary import guarded
from bot.services import Services


def _where(body: dict) -> tuple[str, str]:
    return body["user"]["id"], (body.get("channel") or {}).get("id") or body["user"]["id"]


def _after_ack(
    body: dict, context: BoltContext, respond: Respond, work: Callable[[Services, str, str, str], None]
) -> None:
    services: Services = context["services"]
    user, channel = _where(body)
    value = body["actions"][0].get("value", "")
    action = body["actions"][0].get("action_id", "")

    def answer(text: str) -> None:
        respond(response_type="ephemeral", replace_original=False, text=text)

    services.work.submit(guarded(f"search button {action}", answer, lambda: work(services, value, user, channel)))


def next_button(ack: Ack, body: dict, respond: Respond, context: BoltContext) -> None:
    from bot.listeners.commands.search import next_page

    ack()
    _after_ack(
        body,
        context,
        respond,
        lambda services, value, user, channel: next_page(services, value, user=user, channel=channel, respond=respond),
    )


def link_button(ack: Ack, body: dict, respond: Respond, context: BoltContext) -> None:
    """As `/aws-support link <case>` in this channel, by this person: the same checks, the same answer."""
    ack()

    def link(services: Services, case_id: str, user: str, channel: str) -> None:
        case, _, is_new = services.cases.link(services.case_id_for(channel, case_id), channel, user)
        message = "case_linked" if is_new else "case_already_linked"
        respond(
            response_type="ephemeral", replace_original=False, text=render.text(message, case=case, channel=channel)
        )

    _after_ack(body, context, respond, link)


def register(app: App) -> None:
    app.action("search_next")(next_button)
    app.action("search_link")(link_button)

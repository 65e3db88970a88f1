"""Buttons on the case card, and the service picker of the Create case modal."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import SimpleNamespace

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import render
from bot.errors import BotError
from bot.listeners.boundary import guarded, promptly
from bot.services import Services

logger = logging.getLogger(__name__)


def _where(body: dict) -> tuple[str, str]:
    return body["user"]["id"], (body.get("channel") or {}).get("id") or body["user"]["id"]


def _case_id(body: dict) -> str:
    return body["actions"][0].get("value", "")


def _fail(client: WebClient, channel: str, user: str, error: BotError) -> None:
    _tell(client, channel, user, render.error_text(error))


def _tell(client: WebClient, channel: str, user: str, reason: str) -> None:
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=render.text("action_failed", reason=reason))
    except SlackApiError as exc:
        logger.warning("could not report a failed action to %s: %s", user, exc.response.get("error"))


def _open_reply(body: dict, client: WebClient, context: BoltContext, *, reopen: bool) -> None:
    services: Services = context["services"]
    user, channel = _where(body)
    case_id = _case_id(body)
    try:
        # Before the form, not after the reply is typed: the card may be older than the accounts file.
        services.check_ref(channel, case_id)
    except BotError as error:
        _fail(client, channel, user, error)
        return
    # trigger_id lives 3 s: use what the store knows of the case rather than asking AWS first.
    record = services.cases.record(case_id)
    case = record or SimpleNamespace(case_id=case_id, display_id=case_id, subject="")
    if reopen:
        # Replies from anyone still reach AWS (and reopen it there); the explicit Reopen is the steward's.
        try:
            services.cases.require_steward(user, case_id, "reopen", case.display_id or case_id)
        except BotError as error:
            _fail(client, channel, user, error)
            return
    try:
        client.views_open(trigger_id=body["trigger_id"], view=_reply_view(case, channel, reopen))
    except SlackApiError as exc:
        _fail(client, channel, user, BotError("slack_error", error=exc.response.get("error", "")))


def _reply_view(case: object, channel: str, reopen: bool) -> dict:
    from bot.listeners.views.cases import reply_view

    return reply_view(case, channel=channel, reopen=reopen)


def reply_button(ack: Ack, body: dict, client: WebClient, context: BoltContext) -> None:
    ack()
    promptly("reply button", body, context, client, lambda: _open_reply(body, client, context, reopen=False))


def reopen_button(ack: Ack, body: dict, client: WebClient, context: BoltContext) -> None:
    ack()
    promptly("reopen button", body, context, client, lambda: _open_reply(body, client, context, reopen=True))


def _after_ack(body: dict, client: WebClient, context: BoltContext, work: Callable[[Services, str, str, str], object]):
    """Run `work(services, case_id, user, channel)` after the ack, in the case's queue; failures to the clicker."""
    services: Services = context["services"]
    user, channel = _where(body)
    case_id = _case_id(body)

    def answer(text: str) -> None:
        _tell(client, channel, user, text)

    def checked_work() -> object:
        # The card may be older than the accounts file that took this channel off the case's account.
        services.check_ref(channel, case_id)
        return work(services, case_id, user, channel)

    job = guarded(f"case button on {case_id}", answer, checked_work)
    services.work.submit(job, key=case_id)


def resolve_button(ack: Ack, body: dict, client: WebClient, context: BoltContext) -> None:
    ack()
    _after_ack(
        body, client, context, lambda services, case_id, user, channel: services.cases.resolve(case_id, user, channel)
    )


def _refresh(services: Services, case_id: str, user: str, channel: str) -> None:
    # The sync first: it posts what the poller has not yet, and marks this read as the newest one,
    # so an older poller snapshot can no longer redraw the card after the redraw below.
    services.sync.sync_case(case_id)
    services.cases.refresh(case_id)


def refresh_button(ack: Ack, body: dict, client: WebClient, context: BoltContext) -> None:
    ack()
    _after_ack(body, client, context, _refresh)


def _redraw_create_form(
    body: dict, client: WebClient, services: Services, *, account: str, service: dict | None, categories: list
) -> None:
    from bot.listeners.views.cases import _metadata, create_case_view

    view = body["view"]
    try:
        new_view = create_case_view(
            services,
            channel=_metadata(view).get("channel", ""),
            subject=((view["state"]["values"].get("subject") or {}).get("subject") or {}).get("value") or "",
            service=service,
            categories=categories,
            account=account,
            picked=True,
        )
        client.views_update(view_id=view["id"], hash=view.get("hash"), view=new_view)
    except BotError as error:
        logger.warning("could not redraw the Create case form: %s", error)
    except SlackApiError as exc:
        # hash_conflict: the person changed the form meanwhile; their newer choice triggers its own update
        logger.info("views.update skipped: %s", exc.response.get("error"))


def service_chosen(ack: Ack, body: dict, client: WebClient, context: BoltContext) -> None:
    """Redraw the Create case form with the chosen service's categories; what was typed is kept."""
    ack()
    promptly("service picker", body, context, client, lambda: _redraw_for_service(body, client, context["services"]))


def _redraw_for_service(body: dict, client: WebClient, services: Services) -> None:
    from bot.listeners.options import _selected, form_gateway
    from bot.listeners.views.cases import _metadata

    view = body["view"]
    selected = body["actions"][0].get("selected_option") or {}
    account = _selected(view["state"]["values"], "account") or _metadata(view).get("account", "")
    try:
        catalog = form_gateway(services, view).services()
    except BotError as error:
        logger.warning("could not load categories: %s", error)
        return
    service = next((s for s in catalog if selected.get("value") in (s.code, s.option_value)), None)
    categories = list(service.categories) if service else []
    _redraw_create_form(body, client, services, account=account, service=selected or None, categories=categories)


def account_chosen(ack: Ack, body: dict, client: WebClient, context: BoltContext) -> None:
    """Redraw the Create case form for the chosen account: its services, categories and severities."""
    ack()
    selected = body["actions"][0].get("selected_option") or {}
    account = str(selected.get("value") or "")

    def redraw() -> None:
        _redraw_create_form(body, client, context["services"], account=account, service=None, categories=[])

    promptly("account picker", body, context, client, redraw)


def register(app: App) -> None:
    app.action("case_reply")(reply_button)
    app.action("case_reopen")(reopen_button)
    app.action("case_resolve")(resolve_button)
    app.action("case_refresh")(refresh_button)
    app.action("service")(service_chosen)
    app.action("account")(account_chosen)

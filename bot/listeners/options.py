"""External selects of the Create case modal: services (searchable), the chosen service's categories,
and (over 100 accounts) the accounts. Services and categories are the chosen account's."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, BoltContext

from bot import render
from bot.errors import BotError
from bot.services import Services

if TYPE_CHECKING:
    from bot.aws.gateway import SupportGateway

MAX_OPTIONS = render.MAX_OPTIONS  # Slack shows at most 100 options


def _option(label: str, value: str) -> dict:
    # An option needs a text: a nameless entry from AWS shows its value.
    text = render.truncate(render.escape_plain(label or value), render.MAX_OPTION_TEXT)
    return {"text": {"type": "plain_text", "text": text}, "value": value}


def _selected(values: dict[str, Any], prefix: str) -> str:
    """The value picked in the block `prefix` (or `prefix:…`, block IDs that carry the account)."""
    for block_id, block in values.items():
        if block_id == prefix or block_id.startswith(prefix + ":"):
            for element in (block or {}).values():
                chosen = (element or {}).get("selected_option") or {}
                if chosen.get("value"):
                    return str(chosen["value"])
    return ""


def form_gateway(services: Services, view: dict[str, Any]) -> SupportGateway:
    """The gateway of the account the form is opened in (its Account field, else the one it was drawn for)."""
    from bot.listeners.views.cases import form_account

    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        metadata = {}
    values = (view.get("state") or {}).get("values") or {}
    chosen = _selected(values, "account") or str(metadata.get("account") or "")
    return services.gateway.in_account(form_account(services, str(metadata.get("channel") or ""), chosen))


def service_options(ack: Ack, body: dict, context: BoltContext) -> None:
    services: Services = context["services"]
    query = (body.get("value") or "").strip().lower()
    try:
        catalog = form_gateway(services, body.get("view") or {}).services()
    except BotError:
        ack(options=[])
        return
    matches = [s for s in catalog if query in s.name.lower() or query in s.code.lower()]
    # Names that start with what was typed first: "ec2" finds EC2 before services that mention it.
    matches.sort(key=lambda s: (not s.name.lower().startswith(query), s.name.lower()))
    # Long codes travel as short keys (option values stop at 150 characters); the gateway maps them back.
    ack(options=[_option(s.name, s.option_value) for s in matches[:MAX_OPTIONS]])


def category_options(ack: Ack, body: dict, context: BoltContext) -> None:
    services: Services = context["services"]
    view = body.get("view") or {}
    service_value = _selected((view.get("state") or {}).get("values") or {}, "service")
    if not service_value:
        ack(options=[_option(render.text("choose_service_first"), "-")])
        return
    try:
        catalog = form_gateway(services, view).services()
    except BotError:
        ack(options=[])
        return
    query = (body.get("value") or "").strip().lower()
    service = next((s for s in catalog if service_value in (s.code, s.option_value)), None)
    categories = [c for c in (service.categories if service else ()) if query in c.name.lower()]
    # A service may have more categories than Slack shows: typing narrows them down.
    ack(options=[_option(c.name, c.option_value) for c in categories[:MAX_OPTIONS]])


def account_options(ack: Ack, body: dict, context: BoltContext) -> None:
    """Over 100 accounts usable in the channel: the Account field searches them by alias or ID."""
    services: Services = context["services"]
    try:
        channel = str(json.loads((body.get("view") or {}).get("private_metadata") or "{}").get("channel") or "")
    except json.JSONDecodeError:
        channel = ""
    query = (body.get("value") or "").strip().lower()
    found = []
    for account in services.accounts.usable_in(channel):
        account_id = services.accounts.account_id(account)
        if query in account.alias or query in account_id:
            found.append(_option(f"{account.alias} ({account_id})" if account_id else account.alias, account.alias))
    ack(options=found[:MAX_OPTIONS])


def register(app: App) -> None:
    app.options("service")(service_options)
    app.options("category")(category_options)
    app.options("account")(account_options)

"""External selects of the Create case modal: services (searchable) and the chosen service's categories."""

from __future__ import annotations

from slack_bolt import Ack, App, BoltContext

from bot import render
from bot.errors import BotError
from bot.services import Services

MAX_OPTIONS = render.MAX_OPTIONS  # Slack shows at most 100 options


def _option(label: str, value: str) -> dict:
    # An option needs a text: a nameless entry from AWS shows its value.
    text = render.truncate(render.escape_plain(label or value), render.MAX_OPTION_TEXT)
    return {"text": {"type": "plain_text", "text": text}, "value": value}


def service_options(ack: Ack, body: dict, context: BoltContext) -> None:
    services: Services = context["services"]
    query = (body.get("value") or "").strip().lower()
    try:
        catalog = services.gateway.services()
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
    values = (body.get("view") or {}).get("state", {}).get("values", {})
    selected = ((values.get("service") or {}).get("service") or {}).get("selected_option") or {}
    service_value = selected.get("value")
    if not service_value:
        ack(options=[_option(render.text("choose_service_first"), "-")])
        return
    try:
        catalog = services.gateway.services()
    except BotError:
        ack(options=[])
        return
    query = (body.get("value") or "").strip().lower()
    service = next((s for s in catalog if service_value in (s.code, s.option_value)), None)
    categories = [c for c in (service.categories if service else ()) if query in c.name.lower()]
    # A service may have more categories than Slack shows: typing narrows them down.
    ack(options=[_option(c.name, c.option_value) for c in categories[:MAX_OPTIONS]])


def register(app: App) -> None:
    app.options("service")(service_options)
    app.options("category")(category_options)

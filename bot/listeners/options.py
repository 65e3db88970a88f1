"""External selects of the Create case modal: services (searchable) and the chosen service's categories."""

from __future__ import annotations

from slack_bolt import Ack, App, BoltContext

from bot import render
from bot.errors import BotError
from bot.services import Services

MAX_OPTIONS = 100  # Slack shows at most 100 options


def _option(label: str, value: str) -> dict:
    return {"text": {"type": "plain_text", "text": render.truncate(render.escape_plain(label), 75)}, "value": value}


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
    ack(options=[_option(s.name, s.code) for s in matches[:MAX_OPTIONS]])


def category_options(ack: Ack, body: dict, context: BoltContext) -> None:
    services: Services = context["services"]
    values = (body.get("view") or {}).get("state", {}).get("values", {})
    selected = ((values.get("service") or {}).get("service") or {}).get("selected_option") or {}
    service_code = selected.get("value")
    if not service_code:
        ack(options=[_option(render.text("choose_service_first"), "-")])
        return
    try:
        catalog = services.gateway.services()
    except BotError:
        ack(options=[])
        return
    query = (body.get("value") or "").strip().lower()
    service = next((s for s in catalog if s.code == service_code), None)
    categories = [c for c in (service.categories if service else ()) if query in c.name.lower()]
    ack(options=[_option(c.name, c.code) for c in categories[:MAX_OPTIONS]])


def register(app: App) -> None:
    app.options("service")(service_options)
    app.options("category")(category_options)

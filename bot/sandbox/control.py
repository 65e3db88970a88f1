"""The sandbox's control API under /_sandbox/ (see bot/sandbox/server.py): faults, replies, settings, clock."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.sandbox.errors import SupportError
from bot.sandbox.state import AWS_ENGINEER
from bot.sandbox.times import parse_time

if TYPE_CHECKING:
    from bot.sandbox.server import SandboxServer

ANY_OPERATION = "*"


class ControlError(Exception):
    pass


def _control_faults(server: SandboxServer, body: dict[str, Any]) -> dict[str, Any]:
    server.inject_fault(
        operation=str(body.get("operation", ANY_OPERATION)),
        code=_required(body, "code"),
        count=int(body.get("count", 1)),
        message=body.get("message"),
        after_processing=bool(body.get("after_processing", False)),
        late_seconds=float(body.get("late_seconds", 0.0)),
    )
    return {"ok": True}


def _control_reply(server: SandboxServer, body: dict[str, Any]) -> dict[str, Any]:
    attachments = []
    for item in body.get("attachments") or []:
        try:
            attachments.append((str(item["fileName"]), base64.b64decode(item.get("data", ""), validate=True)))
        except (KeyError, TypeError, binascii.Error, ValueError) as exc:
            raise ControlError("attachments: a list of {fileName, data (base64)}") from exc
    return server.add_aws_reply(
        _required(body, "case_id"),
        _required(body, "body"),
        attachments,
        submitted_by=body.get("submitted_by") or AWS_ENGINEER,
        status=body.get("status"),
    )


def _control_config(server: SandboxServer, body: dict[str, Any]) -> dict[str, Any]:
    if "latency_seconds" in body:
        server.set_latency(float(body["latency_seconds"]))
    if "reply_delay_seconds" in body:
        delay = body["reply_delay_seconds"]
        server.set_reply_delay(None if delay is None else float(delay))
    if "attachment_sets_per_window" in body:
        sets = body["attachment_sets_per_window"]
        server.set_attachment_set_rate(None if sets is None else int(sets))
    if "hostile_prefix" in body:
        server.set_hostile_prefix(body["hostile_prefix"])
    if "check_count" in body:
        count = body["check_count"]
        server.set_trusted_advisor_check_count(None if count is None else int(count))
    return {
        "latency_seconds": server.latency_seconds,
        "reply_delay_seconds": server.reply_delay_seconds,
        "check_count": len(server.trusted_advisor.checks),
        "attachment_sets_per_window": server.state.new_sets_per_window,
    }


def _control_service(server: SandboxServer, body: dict[str, Any]) -> dict[str, Any]:
    categories = body.get("categories") or []
    try:
        pairs = [(str(c["code"]), str(c.get("name") or c["code"])) for c in categories]
    except (KeyError, TypeError) as exc:
        raise ControlError("categories: a list of {code, name}") from exc
    server.add_service(_required(body, "code"), str(body.get("name") or body["code"]), pairs)
    return {"ok": True}


def _control_case(server: SandboxServer, body: dict[str, Any]) -> dict[str, Any]:
    """Backdate a case (`time_created`, ISO 8601 UTC) or set its status: a year of history in seconds."""
    fields = {name: str(body[name]) for name in ("time_created", "status") if body.get(name)}
    if not fields:
        raise ControlError("give time_created and/or status")
    if "time_created" in fields and parse_time(fields["time_created"]) is None:
        raise ControlError("time_created: ISO 8601, e.g. 2025-11-23T06:10:00.000Z")
    try:
        server.edit_case(_required(body, "case_id"), **fields)
    except SupportError as exc:
        raise ControlError(f"no case {body.get('case_id')}") from exc
    return {"ok": True}


def _control_clock(server: SandboxServer, body: dict[str, Any]) -> dict[str, Any]:
    server.advance_clock(float(body.get("advance_seconds", 0)))
    return {"now": server.clock.now().isoformat()}


def _control_calls(server: SandboxServer, _: dict[str, Any]) -> dict[str, Any]:
    return {"calls": dict(server.calls)}


def _control_reset_calls(server: SandboxServer, _: dict[str, Any]) -> dict[str, Any]:
    server.reset_calls()
    return {"calls": {}}


def _control_clear_faults(server: SandboxServer, _: dict[str, Any]) -> dict[str, Any]:
    server.clear_faults()
    return {"ok": True}


def _control_health(server: SandboxServer, _: dict[str, Any]) -> dict[str, Any]:
    return {"status": "ok", "cases": len(server.cases), "checks": len(server.trusted_advisor.checks)}


def _required(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ControlError(f"{name} is required")
    return value


CONTROL_ROUTES: dict[tuple[str, str], Callable[[SandboxServer, dict[str, Any]], dict[str, Any]]] = {
    ("POST", "faults"): _control_faults,
    ("DELETE", "faults"): _control_clear_faults,
    ("POST", "reply"): _control_reply,
    ("POST", "config"): _control_config,
    ("POST", "clock"): _control_clock,
    ("POST", "case"): _control_case,
    ("POST", "service"): _control_service,
    ("GET", "calls"): _control_calls,
    ("DELETE", "calls"): _control_reset_calls,
    ("GET", "health"): _control_health,
}

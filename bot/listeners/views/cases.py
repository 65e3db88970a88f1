"""Modals: the Create case form and the Reply form. Validate, ack (errors stay on their field), then work."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot import render
from bot.cases.service import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS_PER_SET, MAX_CC, SlackFile
from bot.domain import Category, NewCase
from bot.services import Services

logger = logging.getLogger(__name__)

EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
DEFAULT_SEVERITY = "low"


# Building the views -----------------------------------------------------------------------


def create_case_view(
    services: Services,
    *,
    channel: str,
    subject: str = "",
    service: dict[str, Any] | None = None,
    categories: list[Category] | None = None,
) -> dict[str, Any]:
    severities = services.gateway.severity_levels()
    default = next((s for s in severities if s.code == DEFAULT_SEVERITY), severities[0])
    return render.view(
        "create_case_modal.json.j2",
        private_metadata=json.dumps({"channel": channel}),
        subject=subject,
        service=service,
        service_code=(service or {}).get("value", ""),
        categories=categories or [],
        severities=severities,
        default_severity=default,
    )


def reply_view(case: Any, *, channel: str, reopen: bool) -> dict[str, Any]:
    return render.view(
        "reply_modal.json.j2",
        private_metadata=json.dumps({"case_id": case.case_id, "channel": channel}),
        case=case,
        reopen=reopen,
    )


# Reading the submitted state --------------------------------------------------------------


@dataclass
class Form:
    """The values of a submitted modal, by block ID prefix, with the errors found so far."""

    values: dict[str, dict[str, Any]]
    errors: dict[str, str] = field(default_factory=dict)

    def block_id(self, prefix: str) -> str:
        return next((b for b in self.values if b == prefix or b.startswith(prefix + ":")), prefix)

    def element(self, prefix: str) -> dict[str, Any]:
        block = self.values.get(self.block_id(prefix)) or {}
        return next(iter(block.values()), {}) if block else {}

    def text(self, prefix: str) -> str:
        return (self.element(prefix).get("value") or "").strip()

    def choice(self, prefix: str) -> str:
        return ((self.element(prefix).get("selected_option") or {}).get("value") or "").strip()

    def files(self, prefix: str) -> list[SlackFile]:
        return [SlackFile.from_payload(f) for f in self.element(prefix).get("files") or []]

    def error(self, prefix: str, message: str, **params: Any) -> None:
        self.errors.setdefault(self.block_id(prefix), render.text(message, **params))

    def required_text(self, prefix: str, message: str) -> str:
        value = self.text(prefix)
        if not value:
            self.error(prefix, message)
        return value

    def emails(self, prefix: str) -> list[str]:
        raw = self.text(prefix)
        addresses = [a.strip() for a in re.split(r"[,;\s]+", raw) if a.strip()]
        for address in addresses:
            if not EMAIL.match(address):
                self.error(prefix, "invalid_email", address=address)
                return []
        if len(addresses) > MAX_CC:
            self.error(prefix, "too_many_cc", count=len(addresses))
        return addresses

    def attachments(self, prefix: str) -> list[SlackFile]:
        files = self.files(prefix)
        if len(files) > MAX_ATTACHMENTS_PER_SET:
            self.error(prefix, "too_many_files", count=len(files))
        for f in files:
            if f.size > MAX_ATTACHMENT_BYTES:
                self.error(prefix, "file_too_large", name=f.name)
        return files


def _form(view: dict[str, Any]) -> Form:
    return Form(values=view.get("state", {}).get("values", {}))


def _metadata(view: dict[str, Any]) -> dict[str, str]:
    try:
        return json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        return {}


# Submissions ------------------------------------------------------------------------------


def submit_create_case(ack: Ack, body: dict, view: dict, client: WebClient, context: BoltContext) -> None:
    services: Services = context["services"]
    form = _form(view)
    user = body["user"]["id"]
    channel = _metadata(view).get("channel") or user
    subject = form.required_text("subject", "invalid_subject")
    description = form.required_text("description", "invalid_description")
    service_code = form.choice("service")
    if not service_code:
        form.error("service", "invalid_service")
    category_code = form.choice("category")
    if not category_code or category_code == "-":
        form.error("category", "invalid_category")
    cc = form.emails("cc")
    files = form.attachments("attachments")
    if form.errors:
        ack(response_action="errors", errors=form.errors)
        return
    new_case = NewCase(
        subject=subject,
        service_code=service_code,
        category_code=category_code,
        severity_code=form.choice("severity") or DEFAULT_SEVERITY,
        body=description,
        issue_type=form.choice("issue_type") or "technical",
        language=form.choice("language") or "en",
        cc_email_addresses=tuple(cc),
    )
    # Noted before the ack closes the modal: what the person typed survives a crash after it.
    lease = services.cases.note_new_case(new_case, files, opened_by=user, channel=channel, form_id=view.get("id", ""))
    ack()
    if lease is not None:
        services.cases.start(lease)


def submit_reply(ack: Ack, body: dict, view: dict, client: WebClient, context: BoltContext) -> None:
    services: Services = context["services"]
    form = _form(view)
    user = body["user"]["id"]
    metadata = _metadata(view)
    text = form.required_text("text", "invalid_reply_text")
    cc = form.emails("cc")
    files = form.attachments("attachments")
    if form.errors:
        ack(response_action="errors", errors=form.errors)
        return
    channel = metadata.get("channel", user)
    case_id = metadata.get("case_id", "")
    # Noted before the ack closes the modal: a crash after it must not lose what was typed.
    lease = services.cases.note_command_reply(
        case_id, text, user=user, channel=channel, cc=cc, files=files, action_id=f"view:{view.get('id', '')}"
    )
    ack()
    if lease is not None:
        services.cases.start(lease)  # a failure is told to the person, with what they wrote


def register(app: App) -> None:
    app.view("create_case")(submit_create_case)
    app.view("case_reply")(submit_reply)

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
from bot.accounts.errors import AccountNotAllowed, AccountsUnreachable
from bot.cases.service import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS_PER_SET, MAX_CC, SlackFile
from bot.domain import Category, NewCase, Severity
from bot.errors import AwsError
from bot.services import Services

logger = logging.getLogger(__name__)

EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
DEFAULT_SEVERITY = "low"


# Building the views -----------------------------------------------------------------------


def form_account(services: Services, channel: str, chosen: str = "") -> str:
    """The alias the Create form works in: the one chosen while the channel may use it, else the
    channel's default; "" with one account (nothing to choose, nothing named)."""
    if services.routing is None:
        return ""
    account = services.accounts.get(chosen) if chosen else None
    if account is None or not account.allowed_in(channel):
        account = services.accounts.default_for(channel)
    if account is None:
        # No account may be used here: say which one the bot would have used, and why not.
        first = services.accounts.accounts[0]
        raise AccountNotAllowed(first.alias, services.accounts.account_id(first))
    return account.alias


def create_case_view(
    services: Services,
    *,
    channel: str,
    subject: str = "",
    service: dict[str, Any] | None = None,
    categories: list[Category] | None = None,
    account: str = "",
    picked: bool = False,
) -> dict[str, Any]:
    """`picked`: the person chose `account` in the form; it stays shown even when out of reach (no
    fields of another account then), rather than the form moving to another account under them."""
    alias = form_account(services, channel, account)
    # Severities, services and categories are the chosen account's: its support plan decides them.
    if picked and alias == account:
        severities, unreachable = _severities_of(services, alias)
        note = "create_chosen_unreachable"
    else:
        severities, alias, unreachable = _reachable(services, channel, alias)
        note = "create_account_unreachable"
    default = next((s for s in severities if s.code == DEFAULT_SEVERITY), severities[0] if severities else None)
    usable = services.accounts.usable_in(channel) if alias else []
    choices = [{"alias": a.alias, "id": services.accounts.account_id(a)} for a in usable] if len(usable) > 1 else []
    metadata: dict[str, Any] = {"channel": channel, "account": alias} if alias else {"channel": channel}
    if picked and unreachable:
        # Why the picked account has no fields: its submission is refused with it, before any AWS call.
        metadata["unreachable"] = unreachable
    return render.view(
        "create_case_modal.json.j2",
        private_metadata=json.dumps(metadata),
        subject=subject,
        service=service,
        service_code=(service or {}).get("value", ""),
        categories=categories or [],
        severities=severities,
        default_severity=default,
        accounts=choices,
        account=next((c for c in choices if c["alias"] == alias), None),
        # Dependent fields change block IDs with the account, so Slack drops what was picked for another.
        suffix=f":{alias}" if choices else "",
        account_note=render.text(note, accounts=unreachable, chosen=alias) if unreachable and choices else "",
    )


def _reachable(services: Services, channel: str, alias: str) -> tuple[list[Severity], str, list[dict[str, str]]]:
    """(severities, the account the form opens in, the accounts passed over and why): the preferred
    account when AWS Support answers there, else the first other account of the channel that does
    (those already known to be out of reach last). None answering: AccountsUnreachable names each."""
    if not alias:
        return services.gateway.severity_levels(), alias, []
    known = services.routing.problems() if services.routing is not None else {}
    others = [a.alias for a in services.accounts.usable_in(channel) if a.alias != alias]
    others.sort(key=lambda other: other in known)
    passed: list[tuple[str, str, str]] = []
    for candidate in [alias, *others]:
        try:
            severities = services.gateway.in_account(candidate).severity_levels()
        except AwsError as error:
            account_id = services.accounts.account_id(services.accounts.require(candidate))
            passed.append((candidate, account_id, error.code or error.key))
            continue
        return severities, candidate, [{"alias": a, "id": i, "code": c} for a, i, c in passed]
    raise AccountsUnreachable(passed)


def _severities_of(services: Services, alias: str) -> tuple[list[Severity], list[dict[str, str]]]:
    """(the account's severities, []) or, when AWS Support cannot be reached there, ([], why)."""
    try:
        return services.gateway.in_account(alias).severity_levels(), []
    except AwsError as error:
        return [], [_problem(services, alias, error)]


def _problem(services: Services, alias: str, error: AwsError) -> dict[str, str]:
    account_id = services.accounts.account_id(services.accounts.require(alias))
    return {"alias": alias, "id": account_id, "code": error.code or error.key}


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


def _metadata(view: dict[str, Any]) -> dict[str, Any]:
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
    account = _chosen_account(services, form, channel, _metadata(view).get("account", ""))
    if account and form.block_id("account") in form.values:
        _refuse_unless_fields_are_of(form, account, _metadata(view))
    if form.errors:
        ack(response_action="errors", errors=form.errors)
        return
    new_case = NewCase(
        account=account,
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


def _chosen_account(services: Services, form: Form, channel: str, shown: str) -> str:
    """The account the form opens the case in; an error on the form when the channel may not use it."""
    if services.routing is None:
        return ""
    alias = form.choice("account") or shown
    account = services.accounts.get(alias) if alias else services.accounts.default_for(channel)
    if account is None or not account.allowed_in(channel):
        # Without an Account field (one usable account) the refusal goes on the first field there is.
        where = "account" if form.block_id("account") in form.values else "subject"
        first = account or services.accounts.accounts[0]
        form.error(where, "account_not_in_channel", alias=first.alias, account_id=services.accounts.account_id(first))
        return ""
    return account.alias


def _refuse_unless_fields_are_of(form: Form, alias: str, shown: dict[str, Any]) -> None:
    """Service, Category and Severity carry their account in their block IDs: a case is opened only
    with the fields of the account the form names. Else the one error is on the Account field (the
    other fields' errors would be another account's), said from what the form knew when drawn: AWS
    is not asked before the ack (Slack's 3 s)."""
    if form.block_id("severity") == f"severity:{alias}":
        return
    unreachable = shown.get("unreachable") if shown.get("account") == alias else None
    if unreachable:
        message, params = "create_account_cannot_open", {"accounts": unreachable}
    else:
        message, params = "create_account_fields_stale", {"alias": alias}
    form.errors.clear()
    form.error("account", message, **params)


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

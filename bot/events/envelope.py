"""The one shape of message the bot acts on: an EventBridge `Support Case Update` in an SQS body.

EventBridge delivers the event itself as the body (no SNS wrapper). Anything else that lands in the
queue (another rule's events, a test message, a truncated body) becomes `Ignored` with a reason for
the log: the consumer deletes it, since retrying a message that cannot parse would only feed the DLQ.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SOURCE = "aws.support"
DETAIL_TYPE = "Support Case Update"
EVENT_NAMES = frozenset({"CreateCase", "AddCommunicationToCase", "ResolveCase", "ReopenCase"})
# AWS sets origin only on AddCommunicationToCase; other events carry it empty or not at all.
ORIGINS = frozenset({"AWS", "CUSTOMER", ""})
_ACCOUNT = re.compile(r"^\d{12}$")
# A reason quotes at most this much of what it found: bodies are not ours and may be large.
_QUOTE = 40


@dataclass(frozen=True)
class CaseEvent:
    """One change of one case, as AWS Support announced it."""

    event_id: str
    account: str
    region: str
    time: datetime | None
    case_id: str
    display_id: str
    communication_id: str  # empty for CreateCase, ResolveCase and ReopenCase
    event_name: str
    origin: str  # "AWS" | "CUSTOMER" | "" (only AddCommunicationToCase says who wrote)

    @property
    def key(self) -> tuple[str, str, str]:
        """Two messages with the same key announce the same change (a resend or a duplicate rule)."""
        return (self.case_id, self.communication_id, self.event_name)

    @property
    def from_aws(self) -> bool:
        return self.origin == "AWS"


@dataclass(frozen=True)
class Ignored:
    """A message that is not a Support Case Update the bot can use; `reason` is for the log."""

    reason: str
    foreign: bool = False  # well-formed, but someone else's event: not an error anywhere


def parse_message(body: str | bytes | None) -> CaseEvent | Ignored:
    """Read an SQS message body; never raises."""
    try:
        raw = json.loads(body or "")
    except (ValueError, TypeError):
        return Ignored("body is not JSON")
    if not isinstance(raw, dict):
        return Ignored(f"body is a JSON {type(raw).__name__}, not an object")
    source, detail_type = raw.get("source"), raw.get("detail-type")
    if source != SOURCE:
        return Ignored(f"source {_quote(source)} is not {SOURCE}", foreign=source is not None)
    if detail_type != DETAIL_TYPE:
        return Ignored(f"detail-type {_quote(detail_type)} is not {DETAIL_TYPE}", foreign=detail_type is not None)
    detail = raw.get("detail")
    if not isinstance(detail, dict):
        return Ignored("detail is missing or not an object")
    return _case_event(raw, detail)


def _case_event(raw: dict[str, Any], detail: dict[str, Any]) -> CaseEvent | Ignored:
    account = raw.get("account")
    if not isinstance(account, str) or not _ACCOUNT.match(account):
        return Ignored(f"account {_quote(account)} is not a 12-digit account ID")
    case_id = detail.get("case-id")
    if not isinstance(case_id, str) or not case_id.startswith("case-"):
        return Ignored(f"detail.case-id {_quote(case_id)} is not a case ID")
    event_name = detail.get("event-name")
    if not isinstance(event_name, str) or event_name not in EVENT_NAMES:
        return Ignored(f"detail.event-name {_quote(event_name)} is not one of {', '.join(sorted(EVENT_NAMES))}")
    fields = {}
    for name in ("display-id", "communication-id", "origin"):
        value = detail.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            return Ignored(f"detail.{name} is not a string")
        fields[name] = value
    if fields["origin"] not in ORIGINS:
        return Ignored(f"detail.origin {_quote(fields['origin'])} is neither AWS nor CUSTOMER")
    return CaseEvent(
        event_id=str(raw.get("id") or ""),
        account=account,
        region=str(raw.get("region") or ""),
        time=_time(raw.get("time")),
        case_id=case_id,
        display_id=fields["display-id"],
        communication_id=fields["communication-id"],
        event_name=str(event_name),
        origin=fields["origin"],
    )


def _time(value: Any) -> datetime | None:
    # EventBridge writes "2022-02-21T15:51:19Z"; a missing or odd time does not make the event useless.
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _quote(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= _QUOTE else text[:_QUOTE] + "…"

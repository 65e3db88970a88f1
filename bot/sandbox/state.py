"""The support domain of the sandbox: cases, their communications, attachment sets, attachments.

Input arrives here already checked against the model (see operations.py); this module keeps the
rules of a case's life: IDs, statuses, ordering of communications, one-time attachment sets.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.sandbox.catalog import (
    ATTACHMENT_MAX_BYTES,
    ATTACHMENT_SET_LIFETIME_SECONDS,
    ATTACHMENTS_PER_SET,
    NEW_SETS_PER_WINDOW,
    SET_RATE_WINDOW_SECONDS,
)
from bot.sandbox.errors import SupportError, invalid_parameter
from bot.sandbox.times import MILLISECOND, Clock, format_millis, parse_time, truncate_to_millis

ACCOUNT_ID = "123456789012"
CUSTOMER = "sandbox-user@example.com"
AWS_ENGINEER = "Amazon Web Services"
RECENT_COMMUNICATIONS = 5
FIRST_DISPLAY_ID = 1_761_800_000  # ten digits, like the console's case numbers

OPEN_STATUSES = frozenset(
    {"opened", "pending-customer-action", "customer-action-completed", "work-in-progress", "reopened", "unassigned"}
)
CASE_STATUSES = OPEN_STATUSES | {"resolved"}

# Called with (case ID, timeCreated of a new customer communication); the engineer listens.
CustomerMessageListener = Callable[[str, str], None]


@dataclass
class StoredAttachment:
    attachment_id: str
    file_name: str
    data: bytes

    def to_json(self) -> dict[str, Any]:
        return {"attachment_id": self.attachment_id, "file_name": self.file_name, "data": _b64(self.data)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> StoredAttachment:
        return cls(raw["attachment_id"], raw["file_name"], base64.b64decode(raw["data"]))


@dataclass
class AttachmentSetRecord:
    set_id: str
    expires_at: str
    attachments: list[StoredAttachment] = field(default_factory=list)
    used: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "set_id": self.set_id,
            "expires_at": self.expires_at,
            "used": self.used,
            "attachments": [a.to_json() for a in self.attachments],
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> AttachmentSetRecord:
        return cls(
            raw["set_id"],
            raw["expires_at"],
            [StoredAttachment.from_json(a) for a in raw.get("attachments", [])],
            bool(raw.get("used")),
        )


@dataclass
class CommunicationRecord:
    case_id: str
    body: str
    submitted_by: str
    time_created: str
    attachments: list[tuple[str, str]] = field(default_factory=list)  # (attachmentId, fileName)
    from_customer: bool = True
    answered: bool = False  # whether the engineer has replied to this customer communication

    def to_api(self) -> dict[str, Any]:
        return {
            "caseId": self.case_id,
            "body": self.body,
            "submittedBy": self.submitted_by,
            "timeCreated": self.time_created,
            "attachmentSet": [{"attachmentId": aid, "fileName": name} for aid, name in self.attachments],
        }

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CommunicationRecord:
        raw = dict(raw)
        raw["attachments"] = [tuple(pair) for pair in raw.get("attachments", [])]
        return cls(**raw)


@dataclass
class CaseRecord:
    case_id: str
    display_id: str
    subject: str
    status: str
    service_code: str
    category_code: str
    severity_code: str
    submitted_by: str
    time_created: str
    language: str
    issue_type: str = "technical"
    cc_email_addresses: list[str] = field(default_factory=list)
    communications: list[CommunicationRecord] = field(default_factory=list)  # oldest first

    @property
    def is_resolved(self) -> bool:
        return self.status == "resolved"

    @property
    def sort_key(self) -> tuple[str, str]:
        return (self.time_created, self.display_id)

    def to_api(self, include_communications: bool) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "caseId": self.case_id,
            "displayId": self.display_id,
            "subject": self.subject,
            "status": self.status,
            "serviceCode": self.service_code,
            "categoryCode": self.category_code,
            "severityCode": self.severity_code,
            "submittedBy": self.submitted_by,
            "timeCreated": self.time_created,
            "language": self.language,
            "ccEmailAddresses": list(self.cc_email_addresses),
        }
        if include_communications:
            newest = self.newest_first()
            recent: dict[str, Any] = {"communications": [c.to_api() for c in newest[:RECENT_COMMUNICATIONS]]}
            if len(newest) > RECENT_COMMUNICATIONS:
                # Resumes DescribeCommunications for this case after the five shown here.
                recent["nextToken"] = encode_token(_communication_key(newest[RECENT_COMMUNICATIONS - 1]))
            raw["recentCommunications"] = recent
        return raw

    def newest_first(self) -> list[CommunicationRecord]:
        return list(reversed(self.communications))

    def to_json(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["communications"] = [c.to_json() for c in self.communications]
        return raw

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CaseRecord:
        raw = dict(raw)
        raw["communications"] = [CommunicationRecord.from_json(c) for c in raw.get("communications", [])]
        return cls(**raw)


@dataclass(frozen=True)
class NewCaseInput:
    subject: str
    body: str
    service_code: str
    category_code: str
    severity_code: str
    language: str
    issue_type: str
    cc_email_addresses: tuple[str, ...] = ()
    attachment_set_id: str | None = None


@dataclass(frozen=True)
class Page:
    """A window on a newest-first listing, as DescribeCases/DescribeCommunications page it."""

    max_results: int
    next_token: str | None = None
    after: datetime | None = None
    before: datetime | None = None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _communication_key(communication: CommunicationRecord) -> list[str]:
    return [communication.time_created]


def encode_token(key: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode("ascii")


def decode_token(token: str) -> list[str]:
    """Tokens name the last item returned, so paging stays right while new items arrive."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise invalid_parameter("Invalid pagination token") from exc
    if not isinstance(key, list) or not all(isinstance(part, str) for part in key):
        raise invalid_parameter("Invalid pagination token")
    return key


def _within(time_created: str, page: Page) -> bool:
    moment = parse_time(time_created)
    if moment is None:
        return False
    # Both bounds inclusive: a poller that passes its last-seen time gets that item again
    # rather than missing one created in the same millisecond.
    if page.after is not None and moment < page.after:
        return False
    return not (page.before is not None and moment > page.before)


def paginate(items: list[Any], key: Callable[[Any], list[str]], page: Page) -> tuple[list[Any], str | None]:
    """`items` newest first; returns one page and the token for the next, if there is more."""
    if page.next_token:
        last = decode_token(page.next_token)
        items = [item for item in items if key(item) < last]
    chosen = items[: page.max_results]
    token = encode_token(key(chosen[-1])) if len(items) > page.max_results else None
    return chosen, token


class SupportState:
    """All cases of the emulated account. Thread-safe: every public method holds the lock."""

    def __init__(
        self, clock: Clock, on_change: Callable[[], None] | None = None, lock: threading.RLock | None = None
    ) -> None:
        self.clock = clock
        self.lock = lock or threading.RLock()
        self.cases: dict[str, CaseRecord] = {}
        self.attachment_sets: dict[str, AttachmentSetRecord] = {}
        self.attachments: dict[str, StoredAttachment] = {}
        self.last_display_id = FIRST_DISPLAY_ID
        self.new_sets_per_window = NEW_SETS_PER_WINDOW
        self._new_set_times: deque[datetime] = deque()
        self.account_id = ACCOUNT_ID
        self._on_change = on_change or (lambda: None)
        self._listeners: list[CustomerMessageListener] = []

    def add_customer_listener(self, listener: CustomerMessageListener) -> None:
        self._listeners.append(listener)

    # Cases ---------------------------------------------------------------------------------

    def create_case(self, new: NewCaseInput) -> str:
        with self.lock:
            attachments = self._take_attachment_set(new.attachment_set_id)
            now = self.clock.now()
            case = CaseRecord(
                case_id=self._new_case_id(now),
                display_id=self._next_display_id(),
                subject=new.subject,
                status="opened",
                service_code=new.service_code,
                category_code=new.category_code,
                severity_code=new.severity_code,
                submitted_by=CUSTOMER,
                time_created="",
                language=new.language,
                issue_type=new.issue_type,
                cc_email_addresses=list(new.cc_email_addresses),
            )
            first = self._append(case, new.body, CUSTOMER, attachments, from_customer=True)
            case.time_created = first.time_created
            self.cases[case.case_id] = case
            self._on_change()
        self._notify(case.case_id, first.time_created)
        return case.case_id

    def add_communication(
        self, case_id: str, body: str, cc_email_addresses: Iterable[str] = (), attachment_set_id: str | None = None
    ) -> None:
        with self.lock:
            case = self.case(case_id)
            attachments = self._take_attachment_set(attachment_set_id)
            communication = self._append(case, body, CUSTOMER, attachments, from_customer=True)
            if case.is_resolved:
                case.status = "reopened"
            elif case.status == "pending-customer-action":
                case.status = "customer-action-completed"
            for address in cc_email_addresses:
                if address not in case.cc_email_addresses:
                    case.cc_email_addresses.append(address)
            self._on_change()
        self._notify(case_id, communication.time_created)

    def add_aws_reply(
        self,
        case_id: str,
        body: str,
        attachments: Iterable[tuple[str, bytes]] = (),
        submitted_by: str = AWS_ENGINEER,
        status: str | None = None,
    ) -> dict[str, Any]:
        """An AWS engineer writes on the case now; by default the case then waits for the customer."""
        if status is not None and status not in CASE_STATUSES:
            raise invalid_parameter(f"Unknown case status: {status}")
        with self.lock:
            case = self.case(case_id)
            stored = [self._store_attachment(name, data) for name, data in attachments]
            communication = self._append(case, body, submitted_by, stored, from_customer=False)
            if status is not None:
                case.status = status
            elif not case.is_resolved:
                case.status = "pending-customer-action"
            self._on_change()
            return communication.to_api()

    def answer(self, case_id: str, time_created: str, compose: Callable[[CaseRecord, bool], str]) -> bool:
        """The engineer's automatic reply to one customer communication, at most once."""
        with self.lock:
            case = self.cases.get(case_id)
            if case is None or case.is_resolved:
                return False
            customer = [c for c in case.communications if c.from_customer]
            target = next((c for c in customer if c.time_created == time_created), None)
            if target is None or target.answered:
                return False
            target.answered = True
            self.add_aws_reply(case_id, compose(case, target is customer[0]))
            return True

    def unanswered(self) -> list[tuple[str, str]]:
        """Customer communications on open cases still waiting for the engineer."""
        with self.lock:
            return [
                (case.case_id, c.time_created)
                for case in self.cases.values()
                if not case.is_resolved
                for c in case.communications
                if c.from_customer and not c.answered
            ]

    def resolve_case(self, case_id: str) -> tuple[str, str]:
        with self.lock:
            case = self.case(case_id)
            initial = case.status
            case.status = "resolved"
            self._on_change()
            return initial, case.status

    def case(self, case_id: str) -> CaseRecord:
        with self.lock:
            case = self.cases.get(case_id)
            if case is None:
                raise SupportError("CaseIdNotFound", f"Case {case_id} not found.")
            return case

    def describe_cases(
        self,
        *,
        case_ids: list[str] | None,
        display_id: str | None,
        include_resolved: bool,
        include_communications: bool,
        page: Page,
    ) -> dict[str, Any]:
        with self.lock:
            chosen = self._select_cases(case_ids, display_id)
            chosen = [c for c in chosen if (include_resolved or not c.is_resolved) and _within(c.time_created, page)]
            chosen.sort(key=lambda c: c.sort_key, reverse=True)
            window, token = paginate(chosen, lambda c: list(c.sort_key), page)
            response: dict[str, Any] = {"cases": [c.to_api(include_communications) for c in window]}
            if token:
                response["nextToken"] = token
            return response

    def _select_cases(self, case_ids: list[str] | None, display_id: str | None) -> list[CaseRecord]:
        if case_ids:
            return [self.case(case_id) for case_id in dict.fromkeys(case_ids)]
        if display_id:
            found = [c for c in self.cases.values() if c.display_id == display_id]
            if not found:
                raise SupportError("CaseIdNotFound", f"Case with display ID {display_id} not found.")
            return found
        return list(self.cases.values())

    def describe_communications(self, case_id: str, page: Page) -> dict[str, Any]:
        with self.lock:
            case = self.case(case_id)
            chosen = [c for c in case.newest_first() if _within(c.time_created, page)]
            window, token = paginate(chosen, _communication_key, page)
            response: dict[str, Any] = {"communications": [c.to_api() for c in window]}
            if token:
                response["nextToken"] = token
            return response

    # Attachments ---------------------------------------------------------------------------

    def add_attachments_to_set(self, files: list[tuple[str, bytes]], set_id: str | None) -> dict[str, str]:
        with self.lock:
            record = self._usable_set(set_id) if set_id else None
            existing = len(record.attachments) if record else 0
            # The API reference: the set's size limit is "three attachments and 5 MB per attachment".
            if existing + len(files) > ATTACHMENTS_PER_SET:
                raise SupportError(
                    "AttachmentSetSizeLimitExceeded",
                    f"An attachment set can hold at most {ATTACHMENTS_PER_SET} attachments.",
                )
            for name, data in files:
                if len(data) > ATTACHMENT_MAX_BYTES:
                    raise SupportError(
                        "AttachmentSetSizeLimitExceeded", f"Attachment {name} is larger than 5 MB ({len(data)} bytes)."
                    )
            if record is None:
                self._count_new_set()
                record = self._new_attachment_set()
            record.attachments.extend(StoredAttachment(_attachment_id(), name, data) for name, data in files)
            self._on_change()
            return {"attachmentSetId": record.set_id, "expiryTime": record.expires_at}

    def describe_attachment(self, attachment_id: str) -> dict[str, Any]:
        with self.lock:
            stored = self.attachments.get(attachment_id)
            if stored is None:
                raise SupportError("AttachmentIdNotFound", f"Attachment {attachment_id} not found.")
            return {"attachment": {"fileName": stored.file_name, "data": _b64(stored.data)}}

    def expire_attachment_set(self, set_id: str) -> None:
        """Tests: make a set expired now instead of waiting an hour."""
        with self.lock:
            record = self.attachment_sets[set_id]
            record.expires_at = format_millis(self.clock.now() - MILLISECOND)
            self._on_change()

    def _count_new_set(self) -> None:
        """AttachmentLimitExceeded: too many new sets within the window (adding to a set is not one)."""
        now = self.clock.now()
        window = timedelta(seconds=SET_RATE_WINDOW_SECONDS)
        while self._new_set_times and now - self._new_set_times[0] >= window:
            self._new_set_times.popleft()
        if len(self._new_set_times) >= self.new_sets_per_window:
            raise SupportError("AttachmentLimitExceeded")
        self._new_set_times.append(now)

    def _new_attachment_set(self) -> AttachmentSetRecord:
        expires = self.clock.now() + timedelta(seconds=ATTACHMENT_SET_LIFETIME_SECONDS)
        set_id = f"as-{secrets.token_hex(8)}-mu-{secrets.token_urlsafe(24)}"
        record = AttachmentSetRecord(set_id, format_millis(expires))
        self.attachment_sets[set_id] = record
        return record

    def _usable_set(self, set_id: str) -> AttachmentSetRecord:
        record = self.attachment_sets.get(set_id)
        # A set is consumed by the case or communication that used it; after that it is gone.
        if record is None or record.used:
            raise SupportError("AttachmentSetIdNotFound", f"Attachment set {set_id} not found.")
        expires = parse_time(record.expires_at)
        if expires is not None and self.clock.now() >= expires:
            raise SupportError("AttachmentSetExpired")
        return record

    def _take_attachment_set(self, set_id: str | None) -> list[StoredAttachment]:
        if not set_id:
            return []
        record = self._usable_set(set_id)
        record.used = True
        for stored in record.attachments:
            self.attachments[stored.attachment_id] = stored
        return list(record.attachments)

    def _store_attachment(self, name: str, data: bytes) -> StoredAttachment:
        stored = StoredAttachment(_attachment_id(), name, data)
        self.attachments[stored.attachment_id] = stored
        return stored

    # Internals -----------------------------------------------------------------------------

    def _append(
        self,
        case: CaseRecord,
        body: str,
        submitted_by: str,
        attachments: list[StoredAttachment],
        *,
        from_customer: bool,
    ) -> CommunicationRecord:
        communication = CommunicationRecord(
            case_id=case.case_id,
            body=body,
            submitted_by=submitted_by,
            time_created=format_millis(self._next_time(case)),
            attachments=[(a.attachment_id, a.file_name) for a in attachments],
            from_customer=from_customer,
        )
        case.communications.append(communication)
        return communication

    def _next_time(self, case: CaseRecord) -> datetime:
        """Strictly increasing within a case, even for two communications in one millisecond."""
        now = truncate_to_millis(self.clock.now())
        if case.communications:
            last = parse_time(case.communications[-1].time_created)
            if last is not None and now <= last:
                return last + MILLISECOND
        return now

    def _new_case_id(self, now: datetime) -> str:
        while True:
            case_id = f"case-{self.account_id}-muen-{now.year}-{secrets.token_hex(8)}"
            if case_id not in self.cases:
                return case_id

    def _next_display_id(self) -> str:
        # Real case numbers grow with gaps (other accounts' cases come in between).
        self.last_display_id += 1 + secrets.randbelow(40)
        return str(self.last_display_id)

    def _notify(self, case_id: str, time_created: str) -> None:
        for listener in self._listeners:
            listener(case_id, time_created)

    # Persistence ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        with self.lock:
            return {
                "last_display_id": self.last_display_id,
                "cases": [c.to_json() for c in self.cases.values()],
                "attachment_sets": [s.to_json() for s in self.attachment_sets.values()],
                "attachments": [a.to_json() for a in self.attachments.values()],
            }

    def load_json(self, raw: dict[str, Any]) -> None:
        with self.lock:
            self.last_display_id = int(raw.get("last_display_id", FIRST_DISPLAY_ID))
            self.cases = {c.case_id: c for c in map(CaseRecord.from_json, raw.get("cases", []))}
            sets = map(AttachmentSetRecord.from_json, raw.get("attachment_sets", []))
            self.attachment_sets = {s.set_id: s for s in sets}
            self.attachments = {a.attachment_id: a for a in map(StoredAttachment.from_json, raw.get("attachments", []))}


def _attachment_id() -> str:
    return f"attachment-{secrets.token_urlsafe(24)}"

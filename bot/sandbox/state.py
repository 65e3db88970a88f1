"""The support domain of the sandbox: cases and their communications.

Input arrives here already checked against the model (see operations.py); this module keeps the
rules of a case's life: IDs, statuses, ordering of communications. Attachment sets are attachments.py's.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from bot.sandbox.attachments import AttachmentSets
from bot.sandbox.errors import SupportError, invalid_parameter
from bot.sandbox.paging import Page, paginate, within
from bot.sandbox.records import CaseRecord, CommunicationRecord, NewCaseInput, StoredAttachment, communication_key
from bot.sandbox.times import MILLISECOND, Clock, format_millis, parse_time, truncate_to_millis

ACCOUNT_ID = "123456789012"
CUSTOMER = "sandbox-user@example.com"
AWS_ENGINEER = "Amazon Web Services"
FIRST_DISPLAY_ID = 1_761_800_000  # ten digits, like the console's case numbers


class _CaseNumbers:
    """AWS numbers every account's cases in one sequence: two accounts' cases never share a number.
    Counted apart, the sandbox's accounts gave two cases opened in the same moment the same number
    (seen as a search for one case's number finding another account's case too)."""

    def __init__(self) -> None:
        self._last = FIRST_DISPLAY_ID
        self._lock = threading.Lock()

    def seen(self, number: int) -> None:
        """A number given out before this process (the sandbox's saved state): never given again."""
        with self._lock:
            self._last = max(self._last, number)

    def next_after(self, last: int) -> int:
        with self._lock:
            # Real case numbers grow with gaps (other customers' cases come in between).
            self._last = max(self._last, last) + 1 + secrets.randbelow(40)
            return self._last


_CASE_NUMBERS = _CaseNumbers()

OPEN_STATUSES = frozenset(
    {"opened", "pending-customer-action", "customer-action-completed", "work-in-progress", "reopened", "unassigned"}
)
CASE_STATUSES = OPEN_STATUSES | {"resolved"}

# Called with (case ID, timeCreated of a new customer communication); the engineer listens.
CustomerMessageListener = Callable[[str, str], None]


class SupportState:
    """All cases of the emulated account. Thread-safe: every public method holds the lock."""

    def __init__(
        self, clock: Clock, on_change: Callable[[], None] | None = None, lock: threading.RLock | None = None
    ) -> None:
        self.clock = clock
        self.lock = lock or threading.RLock()
        self.cases: dict[str, CaseRecord] = {}
        self.last_display_id = FIRST_DISPLAY_ID
        self.account_id = ACCOUNT_ID
        self._on_change = on_change or (lambda: None)
        self.attachment_sets = AttachmentSets(clock, self._on_change)
        self._listeners: list[CustomerMessageListener] = []

    @property
    def new_sets_per_window(self) -> int:
        return self.attachment_sets.new_sets_per_window

    @new_sets_per_window.setter
    def new_sets_per_window(self, count: int) -> None:
        self.attachment_sets.new_sets_per_window = count

    def add_customer_listener(self, listener: CustomerMessageListener) -> None:
        self._listeners.append(listener)

    # Cases ---------------------------------------------------------------------------------

    def create_case(self, new: NewCaseInput) -> str:
        with self.lock:
            attachments = self.attachment_sets.take(new.attachment_set_id)
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
            attachments = self.attachment_sets.take(attachment_set_id)
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
            stored = [self.attachment_sets.store(name, data) for name, data in attachments]
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
            chosen = [c for c in chosen if (include_resolved or not c.is_resolved) and within(c.time_created, page)]
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
            chosen = [c for c in case.newest_first() if within(c.time_created, page)]
            window, token = paginate(chosen, communication_key, page)
            response: dict[str, Any] = {"communications": [c.to_api() for c in window]}
            if token:
                response["nextToken"] = token
            return response

    # Attachments ---------------------------------------------------------------------------

    def add_attachments_to_set(self, files: list[tuple[str, bytes]], set_id: str | None) -> dict[str, str]:
        with self.lock:
            return self.attachment_sets.add(files, set_id)

    def describe_attachment(self, attachment_id: str) -> dict[str, Any]:
        with self.lock:
            return self.attachment_sets.describe(attachment_id)

    def expire_attachment_set(self, set_id: str) -> None:
        """Tests: make a set expired now instead of waiting an hour."""
        with self.lock:
            self.attachment_sets.expire(set_id)

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
        self.last_display_id = _CASE_NUMBERS.next_after(self.last_display_id)
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
                **self.attachment_sets.to_json(),
            }

    def load_json(self, raw: dict[str, Any]) -> None:
        with self.lock:
            self.last_display_id = int(raw.get("last_display_id", FIRST_DISPLAY_ID))
            self.cases = {c.case_id: c for c in map(CaseRecord.from_json, raw.get("cases", []))}
            _CASE_NUMBERS.seen(self.last_display_id)  # another account's next case comes after it
            self.attachment_sets.load_json(raw)

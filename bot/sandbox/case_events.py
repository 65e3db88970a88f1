"""The sandbox's EventBridge: a `Support Case Update` into its SQS queue for every change of a case.

It compares the cases with what it saw at the previous change, rather than being called from each
operation, so that every path that changes a case (the API, the engineer, the control endpoints, a
reload) is covered by the one hook SupportState already has, `on_change`. AWS sends one event per
new communication (origin AWS or CUSTOMER), CreateCase for a new case (its first communication is
part of it), and ResolveCase / ReopenCase when the status crosses "resolved".
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from bot.sandbox.sqs import SandboxQueue
from bot.sandbox.state import ACCOUNT_ID, CaseRecord, CommunicationRecord, SupportState

QUEUE_NAME = "support-case-updates"


def communication_id(communication: CommunicationRecord) -> str:
    """Stable across restarts: the sandbox's communications have no ID of their own."""
    digest = hashlib.sha256(f"{communication.case_id}|{communication.time_created}".encode()).hexdigest()
    return f"sandbox:us-east-1:{communication.case_id}:{digest[:16]}"


class CaseEventEmitter:
    """Call `observe()` after each change (under the state's lock, so changes are seen in order)."""

    def __init__(self, state: SupportState, queue: SandboxQueue, account: str = ACCOUNT_ID) -> None:
        self.state = state
        self.queue = queue
        self.account = account
        self.published = 0
        self._seen: dict[str, tuple[int, bool]] = {}
        self.baseline()

    def baseline(self) -> None:
        """What exists now is old news (a reloaded state file): only later changes are published."""
        with self.state.lock:
            self._seen = {case.case_id: _shape(case) for case in self.state.cases.values()}

    def observe(self) -> None:
        with self.state.lock:
            for case in self.state.cases.values():
                self._publish_changes(case)

    def _publish_changes(self, case: CaseRecord) -> None:
        seen = self._seen.get(case.case_id)
        count, resolved = _shape(case)
        if seen is None:
            self._publish(case, "CreateCase")
            seen = (1, False)
        seen_count, was_resolved = seen
        if was_resolved and not resolved:
            self._publish(case, "ReopenCase")
        for communication in case.communications[seen_count:]:
            origin = "CUSTOMER" if communication.from_customer else "AWS"
            self._publish(case, "AddCommunicationToCase", communication_id(communication), origin)
        if resolved and not was_resolved:
            self._publish(case, "ResolveCase")
        self._seen[case.case_id] = (count, resolved)

    def _publish(self, case: CaseRecord, event_name: str, communication: str = "", origin: str = "") -> None:
        event = support_case_update(
            account=self.account,
            case_id=case.case_id,
            display_id=case.display_id,
            event_name=event_name,
            communication_id=communication,
            origin=origin,
            event_id=str(uuid.uuid4()),
        )
        self.queue.send(json.dumps(event))
        self.published += 1


def support_case_update(
    *,
    account: str,
    case_id: str,
    display_id: str,
    event_name: str,
    communication_id: str = "",
    origin: str = "",
    event_id: str = "",
    time: datetime | None = None,
    region: str = "us-east-1",
) -> dict[str, Any]:
    """The event as EventBridge delivers it to an SQS target: the event itself is the body."""
    detail = {
        "case-id": case_id,
        "display-id": display_id,
        "communication-id": communication_id,
        "event-name": event_name,
    }
    if origin:
        detail["origin"] = origin
    when = (time or datetime.now(UTC)).astimezone(UTC)
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "Support Case Update",
        "source": "aws.support",
        "account": account,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": detail,
    }


def _shape(case: CaseRecord) -> tuple[int, bool]:
    return len(case.communications), case.is_resolved

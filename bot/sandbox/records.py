"""The sandbox's records of cases, communications, attachment sets and attachments, and their JSON forms."""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.sandbox.paging import encode_token

RECENT_COMMUNICATIONS = 5


@dataclass
class StoredAttachment:
    attachment_id: str
    file_name: str
    data: bytes

    def to_json(self) -> dict[str, Any]:
        return {"attachment_id": self.attachment_id, "file_name": self.file_name, "data": b64(self.data)}

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
                recent["nextToken"] = encode_token(communication_key(newest[RECENT_COMMUNICATIONS - 1]))
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


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def communication_key(communication: CommunicationRecord) -> list[str]:
    return [communication.time_created]

"""Attachment sets and attachments: the set's limits, its one-hour life, one use, and the rate of new sets.

Not locked on its own: SupportState holds its lock around every call, as one set may be taken by a case.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bot.sandbox.catalog import (
    ATTACHMENT_MAX_BYTES,
    ATTACHMENT_SET_LIFETIME_SECONDS,
    ATTACHMENTS_PER_SET,
    NEW_SETS_PER_WINDOW,
    SET_RATE_WINDOW_SECONDS,
)
from bot.sandbox.errors import SupportError
from bot.sandbox.records import AttachmentSetRecord, StoredAttachment, b64
from bot.sandbox.times import MILLISECOND, Clock, format_millis, parse_time


class AttachmentSets:
    def __init__(self, clock: Clock, on_change: Callable[[], None]) -> None:
        self.clock = clock
        self.sets: dict[str, AttachmentSetRecord] = {}
        self.attachments: dict[str, StoredAttachment] = {}
        self.new_sets_per_window = NEW_SETS_PER_WINDOW
        self._new_set_times: deque[datetime] = deque()
        self._on_change = on_change

    def add(self, files: list[tuple[str, bytes]], set_id: str | None) -> dict[str, str]:
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

    def describe(self, attachment_id: str) -> dict[str, Any]:
        stored = self.attachments.get(attachment_id)
        if stored is None:
            raise SupportError("AttachmentIdNotFound", f"Attachment {attachment_id} not found.")
        return {"attachment": {"fileName": stored.file_name, "data": b64(stored.data)}}

    def expire(self, set_id: str) -> None:
        """Tests: make a set expired now instead of waiting an hour."""
        record = self.sets[set_id]
        record.expires_at = format_millis(self.clock.now() - MILLISECOND)
        self._on_change()

    def take(self, set_id: str | None) -> list[StoredAttachment]:
        """The set's attachments for a case or communication; the set is used up."""
        if not set_id:
            return []
        record = self._usable_set(set_id)
        record.used = True
        for stored in record.attachments:
            self.attachments[stored.attachment_id] = stored
        return list(record.attachments)

    def store(self, name: str, data: bytes) -> StoredAttachment:
        """An attachment that comes with the engineer's reply, outside any set."""
        stored = StoredAttachment(_attachment_id(), name, data)
        self.attachments[stored.attachment_id] = stored
        return stored

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
        self.sets[set_id] = record
        return record

    def _usable_set(self, set_id: str) -> AttachmentSetRecord:
        record = self.sets.get(set_id)
        # A set is consumed by the case or communication that used it; after that it is gone.
        if record is None or record.used:
            raise SupportError("AttachmentSetIdNotFound", f"Attachment set {set_id} not found.")
        expires = parse_time(record.expires_at)
        if expires is not None and self.clock.now() >= expires:
            raise SupportError("AttachmentSetExpired")
        return record

    def to_json(self) -> dict[str, Any]:
        return {
            "attachment_sets": [s.to_json() for s in self.sets.values()],
            "attachments": [a.to_json() for a in self.attachments.values()],
        }

    def load_json(self, raw: dict[str, Any]) -> None:
        self.sets = {s.set_id: s for s in map(AttachmentSetRecord.from_json, raw.get("attachment_sets", []))}
        self.attachments = {a.attachment_id: a for a in map(StoredAttachment.from_json, raw.get("attachments", []))}


def _attachment_id() -> str:
    return f"attachment-{secrets.token_urlsafe(24)}"

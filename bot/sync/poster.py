"""Posting a case's pending deliveries into Slack threads, exactly once and in order.

1. Each message goes out with Slack message metadata naming the communication key and the part;
   each confirmed part is written to the store right after Slack answers.
2. A delivery still pending when its case is next synced (a crash, a 5xx, a 429 that outlasted its
   retries) is first reconciled against the thread itself (conversations.replies with metadata):
   whatever Slack already shows is not posted again, whatever it lacks is.
Files go through files.getUploadURLExternal/completeUploadExternal with the file ID written
before the upload, and files.info tells after a crash whether the share happened.
Posts keep to Slack's pace of about one message per second per channel.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bot import render
from bot.ack_first import let_go_of_turn
from bot.aws.gateway import SupportGateway
from bot.domain import AttachmentRef
from bot.errors import AwsError
from bot.slack.channels import Channels, SlackRefused
from bot.sync.state import Delivery, SyncInterrupted, SyncState, SyncStates, Target
from bot.text import split_at_breaks

logger = logging.getLogger(__name__)

# The event types of our messages' metadata: what reconciliation looks for in a thread.
EVENT_COMMUNICATION = "aws_support_communication"
EVENT_STATUS = "aws_support_status"

# Slack's ts and our clock differ; reading a thread back starts this long before the first attempt.
RECONCILE_MARGIN_SECONDS = 300.0

SECTION_LIMIT = render.MAX_SECTION_TEXT - 100  # room for the template's own markup
SECTIONS_PER_MESSAGE = 12
SLACK_FILE_LIMIT = 1024**3


@contextmanager
def _interrupted_by_slack(doing: str) -> Iterator[None]:
    """Slack failing for now interrupts the sync; a refusal only its admins can fix stops it."""
    try:
        yield
    except SlackRefused as refused:
        if refused.bot_wide:
            raise
        gone = refused.error if refused.thread_gone else ""
        raise SyncInterrupted(f"{doing}: Slack {refused.status} {refused.error}", thread_gone=gone) from refused
    except (OSError, urllib.error.URLError) as exc:
        raise SyncInterrupted(f"Slack unreachable: {exc}") from exc


# Slack pacing ------------------------------------------------------------------------------


class ChannelPacer:
    """About one message per second per channel (Slack's rule for chat.postMessage), short bursts allowed."""

    def __init__(self, per_second: float = 1.0, burst: float = 3.0) -> None:
        self.per_second = per_second
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait(self, channel: str) -> None:
        with self._lock:
            now = time.monotonic()
            tokens, last = self._buckets.get(channel, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.per_second) - 1
            self._buckets[channel] = (tokens, now)
        if tokens < 0:
            let_go_of_turn()  # other jobs' AWS answers need no wait for this channel's pace
            time.sleep(-tokens / self.per_second)


# Splitting long bodies ---------------------------------------------------------------------


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Pieces of `text` whose escaped form fits a section; cut at a line or word break when one is near."""
    return split_at_breaks(text.strip("\n"), limit, _escaped_size)


def _escaped_size(char: str) -> int:
    # What escaping makes of a character; an "@" may gain a word joiner (@here, @channel).
    return len(render.escape_mrkdwn(char)) + (char == "@")


def message_parts(body: str) -> list[list[str]]:
    """The messages a body takes: each a list of section texts within Block Kit's limits."""
    sections = split_text(body)
    return [sections[i : i + SECTIONS_PER_MESSAGE] for i in range(0, len(sections), SECTIONS_PER_MESSAGE)]


# Posting -----------------------------------------------------------------------------------


class ThreadPoster:
    """Posts a case's pending deliveries into their threads; the caller holds the case's lock."""

    def __init__(
        self, channels: Channels, gateway: SupportGateway, states: SyncStates, stopping: threading.Event
    ) -> None:
        self.channels = channels
        self.gateway = gateway
        self.states = states
        self.stopping = stopping
        self.pacer = ChannelPacer()

    def deliver_pending(self, state: SyncState) -> int:
        """Post the state's pending deliveries, oldest first, each dropped once done; returns messages posted."""
        posted = 0
        while state.pending:
            if self.stopping.is_set():
                raise SyncInterrupted("stopping")
            delivery = state.pending[0]
            posted += self._deliver(state, delivery)
            state.pending.pop(0)
            if delivery.kind == "communication":
                state.mark_seen(delivery.comm())
            self.states.save(state)
        return posted

    def _deliver(self, state: SyncState, delivery: Delivery) -> int:
        posted = 0
        attachments: dict[str, bytes | None] = {}
        for target in delivery.targets:
            if target.dropped:
                continue
            try:
                with _interrupted_by_slack("posting"):
                    for part in range(target.parts):
                        if part in target.posted:
                            continue
                        self._post_part(delivery, target, part)
                        target.posted.append(part)
                        self.states.save(state)
                        posted += 1
                    if delivery.kind == "communication":
                        self._post_files(state, delivery, target, attachments)
            except SyncInterrupted as interrupted:
                if not interrupted.thread_gone:
                    raise
                target.dropped = interrupted.thread_gone
                self.states.save(state)
                logger.warning(
                    "case %s: thread %s/%s cannot take messages (%s); skipping it",
                    delivery.case_id,
                    target.channel,
                    target.thread_ts,
                    target.dropped,
                )
        return posted

    def _post_part(self, delivery: Delivery, target: Target, part: int) -> None:
        self.pacer.wait(target.channel)
        event_type = EVENT_COMMUNICATION if delivery.kind == "communication" else EVENT_STATUS
        self.channels.post(
            target.channel,
            thread_ts=target.thread_ts,
            metadata={
                "event_type": event_type,
                "event_payload": {"case_id": delivery.case_id, "key": delivery.key, "part": part},
            },
            **self._message(delivery, target, part),
        )

    def _message(self, delivery: Delivery, target: Target, part: int) -> dict[str, Any]:
        if delivery.kind == "status":
            account, account_id = self.gateway.case_account(delivery.case_id)
            return {
                "text": render.text(
                    "sync_status_changed",
                    account=account,
                    account_id=account_id,
                    status=delivery.status,
                    previous=delivery.previous,
                    display_id=delivery.display_id,
                    mention=target.mention,
                )
            }
        comm = delivery.comm()
        parts = message_parts(comm.body)
        created = comm.created_at
        context = {
            "comm": comm,
            "display_id": delivery.display_id,
            "sections": parts[part] if part < len(parts) else [],
            "part": part + 1,
            "parts": len(parts),
            "epoch": int(created.timestamp()) if created else 0,
            "attachments": [a.file_name for a in comm.attachments],
        }
        return {
            "blocks": render.blocks("sync_communication.json.j2", **context),
            "text": render.text("sync_communication_fallback", **context),
        }

    def _post_files(self, state: SyncState, delivery: Delivery, target: Target, cache: dict[str, bytes | None]) -> None:
        for ref in delivery.comm().attachments:
            entry = target.files.get(ref.attachment_id) or {}
            if entry.get("done"):
                continue
            if ref.attachment_id not in cache:
                cache[ref.attachment_id] = self._attachment_data(ref)
            data = cache[ref.attachment_id]
            if data is None or len(data) > SLACK_FILE_LIMIT:
                target.files[ref.attachment_id] = {"done": True, "skipped": "unavailable" if data is None else "size"}
                self.states.save(state)
                continue
            name = ref.file_name or "attachment"
            upload = self.channels.start_upload(name, len(data))
            # The file ID is written before the share, so files.info can tell after a crash.
            target.files[ref.attachment_id] = {"file_id": upload.file_id, "done": False}
            self.states.save(state)
            self.channels.finish_upload(upload, data, title=name, channel=target.channel, thread_ts=target.thread_ts)
            target.files[ref.attachment_id]["done"] = True
            self.states.save(state)

    def _attachment_data(self, ref: AttachmentRef) -> bytes | None:
        try:
            return self.gateway.attachment(ref.attachment_id).data
        except AwsError as error:
            if error.retryable:  # DescribeAttachment is limited per period: the file comes later
                raise SyncInterrupted(f"DescribeAttachment: {error.code}") from error
            logger.warning("attachment %s of %s unavailable: %s", ref.file_name, ref.attachment_id, error.code)
            return None

    # After a crash ------------------------------------------------------------------------

    def reconcile(self, state: SyncState) -> None:
        """Compare pending deliveries with their threads: a confirmation lost in a crash is found there."""
        threads: dict[tuple[str, str], set[tuple[str, int]] | None] = {}
        changed = False
        with _interrupted_by_slack("reading a thread back"):
            for delivery in state.pending:
                for target in delivery.targets:
                    if target.dropped:
                        continue
                    if not target.texts_done():
                        where = (target.channel, target.thread_ts)
                        if where not in threads:
                            threads[where] = self._posted_in_thread(
                                target.channel, target.thread_ts, delivery.started_at - RECONCILE_MARGIN_SECONDS
                            )
                        shown = threads[where]
                        if shown is None:
                            target.dropped = "thread_not_found"
                            changed = True
                            continue
                        found = [
                            p for p in range(target.parts) if (delivery.key, p) in shown and p not in target.posted
                        ]
                        if found:
                            target.posted.extend(found)
                            changed = True
                    for entry in target.files.values():
                        if entry.get("file_id") and not entry.get("done"):
                            if self.channels.file_shared(entry["file_id"]):
                                entry["done"] = True
                            else:
                                entry.clear()  # upload again; an unshared upload is seen by nobody
                            changed = True
        if changed:
            self.states.save(state)

    def _posted_in_thread(self, channel: str, thread_ts: str, oldest: float) -> set[tuple[str, int]] | None:
        """(key, part) of every message of ours in the thread since `oldest`; None if the thread is gone."""
        shown: set[tuple[str, int]] = set()
        try:
            for message in self.channels.thread_since(channel, thread_ts, oldest):
                metadata = message.get("metadata") or {}
                if metadata.get("event_type") in (EVENT_COMMUNICATION, EVENT_STATUS):
                    payload = metadata.get("event_payload") or {}
                    shown.add((str(payload.get("key", "")), int(payload.get("part", 0))))
        except SlackRefused as refused:
            if refused.thread_gone:
                return None
            raise
        return shown

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
import urllib.request
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import render
from bot.domain import AttachmentRef
from bot.errors import AwsError, slack_error
from bot.sync.state import Delivery, SyncState, SyncStates, Target

if TYPE_CHECKING:
    from bot.aws.gateway import SupportGateway

logger = logging.getLogger(__name__)

# The event types of our messages' metadata: what reconciliation looks for in a thread.
EVENT_COMMUNICATION = "aws_support_communication"
EVENT_STATUS = "aws_support_status"

# Slack's ts and our clock differ; reading a thread back starts this long before the first attempt.
RECONCILE_MARGIN_SECONDS = 300.0

SECTION_LIMIT = render.MAX_SECTION_TEXT - 100  # room for the template's own markup
SECTIONS_PER_MESSAGE = 12
SLACK_FILE_LIMIT = 1024**3

# Slack errors that mean this thread cannot take the message, now or later: skip it, keep going.
DEAD_THREAD_ERRORS = frozenset(
    {
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "thread_not_found",
        "message_not_found",
        "restricted_action",
        "restricted_action_thread_only",
        "restricted_action_read_only_channel",
        "no_permission",
        "ekm_access_denied",
        "team_access_not_granted",
        "cannot_reply_to_message",
    }
)
# Slack errors that concern the whole bot: the cycle stops, nothing is marked as skipped.
BOT_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "missing_scope"}
)


class SyncInterrupted(Exception):
    """Slack or AWS failed for now; the case's pending deliveries wait for its next sync."""


# Slack pacing and errors -------------------------------------------------------------------


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
            time.sleep(-tokens / self.per_second)


def _slack_status(exc: SlackApiError) -> int:
    return int(getattr(exc.response, "status_code", 200) or 200)


def _is_dead_thread(exc: SlackApiError) -> bool:
    return _slack_status(exc) < 400 and slack_error(exc) in DEAD_THREAD_ERRORS


def _is_bot_error(exc: SlackApiError) -> bool:
    return slack_error(exc) in BOT_ERRORS


# Splitting long bodies ---------------------------------------------------------------------


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Pieces of `text` whose escaped form fits a section; cut at a line or word break when one is near."""
    pieces: list[str] = []
    rest = text.strip("\n")
    while len(render.escape_mrkdwn(rest)) > limit:
        # Count what escaping makes of each character; an "@" may gain a word joiner (@here, @channel).
        size, cut = 0, 0
        for index, char in enumerate(rest):
            size += len(render.escape_mrkdwn(char)) + (char == "@")
            if size > limit:
                break
            cut = index + 1
        soft = max(rest.rfind("\n", cut // 2, cut), rest.rfind(" ", cut // 2, cut))
        if soft > 0:
            cut = soft
        pieces.append(rest[:cut])
        rest = rest[cut:].lstrip("\n ") if soft > 0 else rest[cut:]
    pieces.append(rest)
    return pieces


def message_parts(body: str) -> list[list[str]]:
    """The messages a body takes: each a list of section texts within Block Kit's limits."""
    sections = split_text(body)
    return [sections[i : i + SECTIONS_PER_MESSAGE] for i in range(0, len(sections), SECTIONS_PER_MESSAGE)]


# Posting -----------------------------------------------------------------------------------


class ThreadPoster:
    """Posts a case's pending deliveries into their threads; the caller holds the case's lock."""

    def __init__(
        self, slack: WebClient, gateway: SupportGateway, states: SyncStates, stopping: threading.Event
    ) -> None:
        self.slack = slack
        self.gateway = gateway
        self.states = states
        self.stopping = stopping
        # From bot.slack.client: retries only 429 (never stored); the rest is reconciled.
        self.client = slack
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
                for part in range(target.parts):
                    if part in target.posted:
                        continue
                    self._post_part(delivery, target, part)
                    target.posted.append(part)
                    self.states.save(state)
                    posted += 1
                if delivery.kind == "communication":
                    self._post_files(state, delivery, target, attachments)
            except SlackApiError as exc:
                if _is_dead_thread(exc):
                    target.dropped = slack_error(exc)
                    self.states.save(state)
                    logger.warning(
                        "case %s: thread %s/%s cannot take messages (%s); skipping it",
                        delivery.case_id,
                        target.channel,
                        target.thread_ts,
                        target.dropped,
                    )
                    continue
                if _is_bot_error(exc):
                    raise
                raise SyncInterrupted(f"Slack {_slack_status(exc)} {slack_error(exc)}") from exc
            except (OSError, urllib.error.URLError) as exc:
                raise SyncInterrupted(f"Slack unreachable: {exc}") from exc
        return posted

    def _post_part(self, delivery: Delivery, target: Target, part: int) -> None:
        self.pacer.wait(target.channel)
        event_type = EVENT_COMMUNICATION if delivery.kind == "communication" else EVENT_STATUS
        self.client.chat_postMessage(
            channel=target.channel,
            thread_ts=target.thread_ts,
            metadata={
                "event_type": event_type,
                "event_payload": {"case_id": delivery.case_id, "key": delivery.key, "part": part},
            },
            # AWS text may carry URLs: they show as written and never unfold into previews.
            unfurl_links=False,
            unfurl_media=False,
            **self._message(delivery, target, part),
        )

    def _message(self, delivery: Delivery, target: Target, part: int) -> dict[str, Any]:
        if delivery.kind == "status":
            return {
                "text": render.text(
                    "sync_status_changed",
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
            upload = self.slack.files_getUploadURLExternal(filename=ref.file_name or "attachment", length=len(data))
            # The file ID is written before the share, so files.info can tell after a crash.
            target.files[ref.attachment_id] = {"file_id": upload["file_id"], "done": False}
            self.states.save(state)
            self._upload(upload["upload_url"], data)
            self.client.files_completeUploadExternal(
                files=[{"id": upload["file_id"], "title": ref.file_name or "attachment"}],
                channel_id=target.channel,
                thread_ts=target.thread_ts,
            )
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

    def _upload(self, url: str, data: bytes) -> None:
        request = urllib.request.Request(url, data=data, method="POST")
        request.add_header("Content-Type", "application/octet-stream")
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - Slack's own upload URL
            response.read()

    # After a crash ------------------------------------------------------------------------

    def reconcile(self, state: SyncState) -> None:
        """Compare pending deliveries with their threads: a confirmation lost in a crash is found there."""
        threads: dict[tuple[str, str], set[tuple[str, int]] | None] = {}
        changed = False
        try:
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
                            if self._file_was_shared(entry["file_id"]):
                                entry["done"] = True
                            else:
                                entry.clear()  # upload again; an unshared upload is seen by nobody
                            changed = True
        except SlackApiError as exc:
            if _is_bot_error(exc):
                raise
            raise SyncInterrupted(f"reading a thread back: {slack_error(exc)}") from exc
        except (OSError, urllib.error.URLError) as exc:
            raise SyncInterrupted(f"Slack unreachable: {exc}") from exc
        if changed:
            self.states.save(state)

    def _posted_in_thread(self, channel: str, thread_ts: str, oldest: float) -> set[tuple[str, int]] | None:
        """(key, part) of every message of ours in the thread since `oldest`; None if the thread is gone."""
        shown: set[tuple[str, int]] = set()
        cursor = None
        while True:
            try:
                response = self.slack.conversations_replies(
                    channel=channel,
                    ts=thread_ts,
                    include_all_metadata=True,
                    oldest=f"{max(oldest, 0):.6f}",
                    limit=200,
                    cursor=cursor,
                )
            except SlackApiError as exc:
                if _is_dead_thread(exc):
                    return None
                raise
            for message in response.get("messages") or []:
                metadata = message.get("metadata") or {}
                if metadata.get("event_type") in (EVENT_COMMUNICATION, EVENT_STATUS):
                    payload = metadata.get("event_payload") or {}
                    shown.add((str(payload.get("key", "")), int(payload.get("part", 0))))
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return shown

    def _file_was_shared(self, file_id: str) -> bool:
        try:
            file = self.slack.files_info(file=file_id)["file"]
        except SlackApiError as exc:
            if slack_error(exc) == "file_not_found":
                return False
            raise
        return bool(file.get("shares") or file.get("channels") or file.get("groups"))

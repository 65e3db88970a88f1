"""Trusted Advisor digests: the service that collects them, tracks what each channel was shown, and
posts them; and the console's `digest --print`.

A digest is built in three steps, each testable alone:

    collect (2 AWS calls) -> Snapshot                                   here
    build_digest(snapshot, previous state of the channel) -> Digest     bot/digest_shaping.py
    digest_blocks(digest, ...) / digest_text(digest, ...) -> Block Kit / terminal text
                                                                        bot/digest_render.py

The "Refresh checks" button's flow (refresh, follow, follow-up) lives in bot/digest_refresh.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from slack_sdk.errors import SlackApiError

from bot import render
from bot.digest.layout import csv_name, details_blocks, details_table, digest_blocks, digest_fallback, digest_text
from bot.digest.refresh import CheckRefresher, PendingRefresh, RefreshOutcome, RefreshReport
from bot.digest.shaping import DigestState, Snapshot, build_digest, make_rows
from bot.domain import CheckSummary
from bot.errors import BotError, SlackError

logger = logging.getLogger(__name__)

LANGUAGE = "en"  # DescribeTrustedAdvisorChecks and ...CheckResult take an ISO 639-1 code


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Posted:
    channel: str
    ts: str


# The service -------------------------------------------------------------------------------------


class DigestService:
    """Collects digests and posts them; knows nothing of Slack payloads, only of channels and threads."""

    def __init__(self, services: Any, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.services = services
        self.clock = clock
        self.language = LANGUAGE
        self.refresher = CheckRefresher(self)
        self._account: str | None = None

    @property
    def gateway(self) -> Any:
        return self.services.gateway

    @property
    def table(self) -> Any:
        return self.services.store.table("digests")

    # Collection

    def account(self) -> str:
        """The account ID for the header; empty when it cannot be known (it is a nicety)."""
        if self._account is None:
            getter = getattr(self.gateway, "account_id", None)
            account = ""
            if callable(getter) and not self.services.settings.sandbox:
                try:
                    account = str(getter() or "")
                except BotError as error:
                    logger.info("account ID unknown for the digest header: %s", error)
            self._account = account[:64]
        return self._account

    def collect(self) -> Snapshot:
        """Every check and its summary: two calls whatever the number of checks."""
        calls_before = self.gateway.calls
        checks = self.gateway.trusted_advisor_checks(self.language)
        summaries = self.gateway.trusted_advisor_summaries(c.check_id for c in checks) if checks else []
        return Snapshot(
            rows=make_rows(checks, summaries),
            collected_at=self.clock(),
            account=self.account(),
            sandbox=bool(self.services.settings.sandbox),
            api_calls=self.gateway.calls - calls_before,
        )

    # Change tracking

    def previous(self, channel: str) -> DigestState | None:
        return DigestState.from_record(self.table.get(channel))

    def remember(self, channel: str, snapshot: Snapshot, posted_at: datetime | None = None) -> None:
        self.table.put(channel, DigestState.of(snapshot, posted_at or self.clock()).to_record())

    def zone_for(self, channel: str) -> ZoneInfo:
        """The channel's schedule zone when it has one, else DIGEST_TIMEZONE."""
        schedule = self.services.schedules.get(channel)
        return ZoneInfo(schedule.timezone if schedule else self.services.settings.digest_timezone)

    # Posting

    def prepare(
        self, channel: str, *, zone: ZoneInfo | None = None, refresh: RefreshReport | None = None
    ) -> tuple[Snapshot, list[dict[str, Any]], str]:
        """Collect and render without side effects: (snapshot, blocks, fallback text)."""
        snapshot = self.collect()
        digest = build_digest(snapshot, self.previous(channel))
        blocks = digest_blocks(digest, zone=zone or self.zone_for(channel), refresh=refresh)
        return snapshot, blocks, digest_fallback(digest)

    def publish(
        self,
        client: Any,
        channel: str,
        snapshot: Snapshot,
        blocks: list[dict[str, Any]],
        text: str,
        *,
        thread_ts: str | None = None,
    ) -> Posted:
        """Post rendered blocks, then remember what this channel was shown."""
        response = post_message(client, channel=channel, blocks=blocks, text=text, thread_ts=thread_ts)
        self.remember(channel, snapshot)
        return Posted(channel=channel, ts=str(response.get("ts", "")))

    def post(self, client: Any, channel: str, *, thread_ts: str | None = None) -> Posted:
        snapshot, blocks, text = self.prepare(channel)
        return self.publish(client, channel, snapshot, blocks, text, thread_ts=thread_ts)

    # Details

    def details(self, client: Any, channel: str, thread_ts: str, check_id: str) -> None:
        """Post a check's flagged resources in the digest's thread, with a CSV when it is long."""
        checks = self.gateway.trusted_advisor_checks(self.language)
        check = next((c for c in checks if c.check_id == check_id), None)
        if check is None:
            raise BotError("digest_check_unknown", check_id=check_id)
        result = self.gateway.trusted_advisor_result(check_id, self.language)
        summary = CheckSummary(check_id=check_id, status=result.status, resources_flagged=len(result.flagged_resources))
        (row,) = make_rows([check], [summary])
        table = details_table(check, row, result)
        blocks, shown = details_blocks(table)
        text = render.text("digest_details_fallback", row=row, total=table.total)
        post_message(client, channel=channel, blocks=blocks, text=text, thread_ts=thread_ts)
        if table.total > shown or table.hidden_columns:
            upload_csv(
                client,
                channel=channel,
                thread_ts=thread_ts,
                filename=csv_name(row),
                content=table.csv,
                title=render.text("digest_csv_title", row=row),
                comment=render.text("digest_csv_comment", row=row, total=table.total),
            )

    # Refresh: the flow is CheckRefresher's (bot/digest_refresh.py)

    def refresh(self, channel: str, thread_ts: str, user: str) -> RefreshOutcome:
        return self.refresher.refresh(channel, thread_ts, user)

    def pending_refreshes(self) -> list[PendingRefresh]:
        return self.refresher.pending_refreshes()

    def next_refresh_poll(self) -> datetime | None:
        return self.refresher.next_refresh_poll()

    def poll_refreshes(self, client: Any, now: datetime | None = None) -> int:
        return self.refresher.poll_refreshes(client, now)


# Slack ---------------------------------------------------------------------------------------------

NOT_IN_CHANNEL = frozenset({"not_in_channel", "channel_not_found", "is_archived"})


def post_message(client: Any, *, channel: str, blocks: list[dict[str, Any]], text: str, thread_ts: str | None) -> Any:
    """chat.postMessage; a public channel the bot is not in is joined once and tried again."""
    kwargs: dict[str, Any] = {"channel": channel, "blocks": blocks, "text": text, "unfurl_links": False}
    if thread_ts:
        kwargs["thread_ts"] = thread_ts
    try:
        return client.chat_postMessage(**kwargs)
    except SlackApiError as exc:
        error = str(exc.response.get("error", ""))
        if error == "not_in_channel" and _join(client, channel):
            try:
                return client.chat_postMessage(**kwargs)
            except SlackApiError as again:
                exc, error = again, str(again.response.get("error", ""))
        if error in NOT_IN_CHANNEL:
            raise BotError("digest_not_in_channel", error=error) from exc
        raise SlackError(error=error) from exc


def _join(client: Any, channel: str) -> bool:
    try:
        client.conversations_join(channel=channel)
    except SlackApiError:
        return False
    return True


def upload_csv(
    client: Any, *, channel: str, thread_ts: str, filename: str, content: str, title: str, comment: str
) -> None:
    try:
        client.files_upload_v2(
            channel=channel,
            thread_ts=thread_ts,
            filename=filename,
            content=content,
            title=title,
            initial_comment=comment,
        )
    except SlackApiError as exc:
        raise SlackError(error=str(exc.response.get("error", ""))) from exc


# The console -----------------------------------------------------------------------------------------


def print_digest(services: Any, *, as_json: bool, out: TextIO) -> int:
    """`python -m bot digest --print`: the digest on a terminal, without Slack and without
    touching any channel's change tracking."""
    digests: DigestService = services.digests
    zone = ZoneInfo(services.settings.digest_timezone)
    try:
        snapshot = digests.collect()
    except BotError as error:
        out.write(render.console_error_text(error) + "\n")
        return 1
    digest = build_digest(snapshot, None)
    if as_json:
        payload = {"text": digest_fallback(digest), "blocks": digest_blocks(digest, zone=zone)}
        out.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(digest_text(digest, zone=zone))
    return 0


__all__ = ["DigestService", "Posted", "print_digest"]

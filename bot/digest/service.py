"""Trusted Advisor digests: the service that collects them, tracks what each channel was shown, and
posts them.

A digest is built in three steps, each testable alone:

    collect (2 AWS calls) -> Snapshot                                   here
    build_digest(snapshot, previous state of the channel) -> Digest     shaping.py
    digest_blocks(digest, ...) / digest_text(digest, ...) -> Block Kit / terminal text
                                                                        layout.py

The "Refresh checks" button's flow (refresh, follow, follow-up) is refresh.py's; the schedules are
schedule.py's and worker.py's; the terminal's `digest --print` is console.py's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot import render
from bot.aws.gateway import SupportGateway
from bot.digest.layout import csv_name, details_blocks, details_table, digest_blocks, digest_fallback
from bot.digest.shaping import DigestState, RefreshReport, Snapshot, build_digest, make_rows
from bot.domain import CheckSummary
from bot.errors import BotError
from bot.slack.channels import Channels, SlackRefused
from bot.store.backend import Store, Table

logger = logging.getLogger(__name__)

LANGUAGE = "en"  # DescribeTrustedAdvisorChecks and ...CheckResult take an ISO 639-1 code
# Slack refusals that mean the bot cannot post in this channel (a private one it was not invited to).
NOT_IN_CHANNEL = frozenset({"not_in_channel", "channel_not_found", "is_archived"})


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Posted:
    channel: str
    ts: str


class DigestService:
    """Collects digests and posts them; knows nothing of Slack payloads, only of channels and threads."""

    def __init__(
        self,
        *,
        gateway: SupportGateway,
        store: Store,
        channels: Channels,
        sandbox: bool = False,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.channels = channels
        self.sandbox = sandbox
        self.clock = clock  # the digest feature's one clock: tests travel in time through it
        self.language = LANGUAGE
        self._account: str | None = None

    @property
    def table(self) -> Table:
        return self.store.table("digests")

    # Collection

    def account(self) -> str:
        """The account ID for the header; empty when it cannot be known (it is a nicety)."""
        if self._account is None:
            account = ""
            if not self.sandbox:
                try:
                    account = str(self.gateway.account_id() or "")
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
            sandbox=self.sandbox,
            api_calls=self.gateway.calls - calls_before,
        )

    # Change tracking

    def previous(self, channel: str) -> DigestState | None:
        return DigestState.from_record(self.table.get(channel))

    def remember(self, channel: str, snapshot: Snapshot, posted_at: datetime | None = None) -> None:
        self.table.put(channel, DigestState.of(snapshot, posted_at or self.clock()).to_record())

    # Posting

    def prepare(
        self, channel: str, *, zone: ZoneInfo, refresh: RefreshReport | None = None
    ) -> tuple[Snapshot, list[dict[str, Any]], str]:
        """Collect and render without side effects: (snapshot, blocks, fallback text)."""
        snapshot = self.collect()
        digest = build_digest(snapshot, self.previous(channel))
        blocks = digest_blocks(digest, zone=zone, refresh=refresh)
        return snapshot, blocks, digest_fallback(digest)

    def publish(
        self,
        channel: str,
        snapshot: Snapshot,
        blocks: list[dict[str, Any]],
        text: str,
        *,
        thread_ts: str | None = None,
    ) -> Posted:
        """Post rendered blocks, then remember what this channel was shown."""
        ts = self._post(channel, blocks=blocks, text=text, thread_ts=thread_ts)
        self.remember(channel, snapshot)
        return Posted(channel=channel, ts=ts)

    def post(self, channel: str, *, zone: ZoneInfo, thread_ts: str | None = None) -> Posted:
        snapshot, blocks, text = self.prepare(channel, zone=zone)
        return self.publish(channel, snapshot, blocks, text, thread_ts=thread_ts)

    # Details

    def details(self, channel: str, thread_ts: str, check_id: str) -> None:
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
        self._post(channel, blocks=blocks, text=text, thread_ts=thread_ts)
        if table.total > shown or table.hidden_columns:
            self.channels.upload_text(
                channel,
                thread_ts=thread_ts,
                filename=csv_name(row),
                content=table.csv,
                title=render.text("digest_csv_title", row=row),
                comment=render.text("digest_csv_comment", row=row, total=table.total),
            )

    def _post(self, channel: str, *, blocks: list[dict[str, Any]], text: str, thread_ts: str | None) -> str:
        # A public channel the bot is not in is joined once and tried again (channels:join).
        try:
            return self.channels.post(channel, blocks=blocks, text=text, thread_ts=thread_ts, join=True)
        except SlackRefused as refused:
            if refused.error in NOT_IN_CHANNEL:
                raise BotError("digest_not_in_channel", error=refused.error) from refused
            raise

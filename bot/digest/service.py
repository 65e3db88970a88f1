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
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot import render
from bot.accounts.config import Account
from bot.accounts.directory import AccountDirectory
from bot.aws.gateway import SupportGateway
from bot.digest.layout import csv_name, details_blocks, details_table, digest_blocks, digest_fallback
from bot.digest.rollup import RollUp, collect_rollup, rollup_blocks, rollup_fallback
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
        directory: AccountDirectory | None = None,
    ) -> None:
        self.gateway = gateway
        # The accounts served, for `digest <alias>` and `digest all`; None: the gateway's one account.
        self.directory = directory
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

    def account_id_of(self, account: Account) -> str:
        return self.directory.account_id(account) if self.directory is not None else ""

    def collect(self, account: Account | None = None) -> Snapshot:
        """Every check and its summary: two calls whatever the number of checks (in `account`, with several)."""
        if account is None or self.directory is None or self.directory.single:
            gateway, label, alias = self.gateway, self.account(), ""
        else:
            gateway = self.gateway.in_account(account.alias)
            label, alias = f"{account.alias} ({self.account_id_of(account)})", account.alias
        calls_before = gateway.calls
        checks = gateway.trusted_advisor_checks(self.language)
        summaries = gateway.trusted_advisor_summaries(c.check_id for c in checks) if checks else []
        return Snapshot(
            rows=make_rows(checks, summaries),
            collected_at=self.clock(),
            account=label,
            sandbox=self.sandbox,
            api_calls=gateway.calls - calls_before,
            alias=alias,
        )

    def accounts_for(self, channel: str, account: str) -> list[Account]:
        """The accounts a digest of `account` ("" the channel's default, an alias, or "all") covers in
        `channel`; an account the channel may not use is refused by name. Empty with one account."""
        directory = self.directory
        if directory is None or directory.single:
            return []
        if account == "all":
            usable = directory.usable_in(channel)
            if usable:
                return usable
            account = ""
        chosen = directory.require(account) if account else directory.default_for(channel)
        if chosen is None:
            chosen = directory.accounts[0]
        return [directory.check_usable(channel, chosen)]

    # Change tracking (per channel, and per account with several: the first account keeps the channel's key)

    def _key(self, channel: str, alias: str) -> str:
        primary = self.directory.accounts[0].alias if self.directory is not None else ""
        return channel if not alias or alias == primary else f"{channel}:{alias}"

    def previous(self, channel: str, alias: str = "") -> DigestState | None:
        return DigestState.from_record(self.table.get(self._key(channel, alias)))

    def remember(self, channel: str, snapshot: Snapshot | RollUp, posted_at: datetime | None = None) -> None:
        snapshots = snapshot.snapshots if isinstance(snapshot, RollUp) else (snapshot,)
        for one in snapshots:
            self.table.put(self._key(channel, one.alias), DigestState.of(one, posted_at or self.clock()).to_record())

    # Posting

    def prepare(
        self, channel: str, *, zone: ZoneInfo, refresh: RefreshReport | None = None, account: str = ""
    ) -> tuple[Snapshot | RollUp, list[dict[str, Any]], str]:
        """Collect and render without side effects: (snapshot, blocks, fallback text). `account`: ""
        (the channel's default), an alias, or "all" (one roll-up of every account the channel may use)."""
        accounts = self.accounts_for(channel, account)
        if account == "all" and len(accounts) > 1:
            rollup = collect_rollup(self, channel, accounts)
            return rollup, rollup_blocks(rollup, zone=zone, refresh=refresh), rollup_fallback(rollup)
        snapshot = self.collect(accounts[0] if accounts else None)
        digest = build_digest(snapshot, self.previous(channel, snapshot.alias))
        blocks = digest_blocks(digest, zone=zone, refresh=refresh)
        return snapshot, blocks, digest_fallback(digest)

    def publish(
        self,
        channel: str,
        snapshot: Snapshot | RollUp,
        blocks: list[dict[str, Any]],
        text: str,
        *,
        thread_ts: str | None = None,
    ) -> Posted:
        """Post rendered blocks, then remember what this channel was shown (of each account)."""
        ts = self._post(channel, blocks=blocks, text=text, thread_ts=thread_ts)
        self.remember(channel, snapshot)
        return Posted(channel=channel, ts=ts)

    def post(
        self, channel: str, *, zone: ZoneInfo, thread_ts: str | None = None, account: str = "", once: str = ""
    ) -> Posted | None:
        """`once`: what Slack gives once per action (a command's trigger_id). A request replayed after
        its replay claim was lost (bot.web.ReplayGuard) finds it claimed here and posts nothing (None).
        Claimed once the digest is ready, just before the post: a crash can leave a claimed digest
        unposted only within the post itself, not while AWS is asked."""
        snapshot, blocks, text = self.prepare(channel, zone=zone, account=account)
        if once and not self.store.table("requests").claim(f"once:{once}", int(time.time())):
            return None
        return self.publish(channel, snapshot, blocks, text, thread_ts=thread_ts)

    # Details

    def details(self, channel: str, thread_ts: str, check_id: str) -> None:
        """Post a check's flagged resources in the digest's thread, with a CSV when it is long.

        `check_id` is `<alias>|<check ID>` on the digest of an account other than the first."""
        alias, _, bare = check_id.rpartition("|")
        check_id = bare
        gateway = self.gateway
        usable = self.accounts_for(channel, alias) if alias else []  # refused where the account may not be used
        if usable:
            gateway = self.gateway.in_account(usable[0].alias)
        checks = gateway.trusted_advisor_checks(self.language)
        check = next((c for c in checks if c.check_id == check_id), None)
        if check is None:
            raise BotError("digest_check_unknown", check_id=check_id)
        result = gateway.trusted_advisor_result(check_id, self.language)
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

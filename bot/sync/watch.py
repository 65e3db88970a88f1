"""Watched channels: a card, and a thread that tells the whole case, for every new case opened outside Slack.

Records this module owns in the store:
- watches: channel -> Watch (the level, and which cases it has carded)
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.accounts.routing import AccountGateways
from bot.aws.gateway import SupportGateway
from bot.cases.service import CaseService
from bot.config import Settings
from bot.domain import HIGH_SEVERITIES, Case, parse_aws_time
from bot.errors import BotError, NotAllowed, UserInputError
from bot.slack.channels import Channels
from bot.store.backend import Store
from bot.sync.cycle import CaseSync
from bot.sync.poster import RECONCILE_MARGIN_SECONDS
from bot.sync.state import aws_time, utcnow

logger = logging.getLogger(__name__)

WATCH_GRACE = timedelta(seconds=10)  # a case opened from Slack is recorded within ms of CreateCase
WATCH_RETAIN = timedelta(days=14)


@dataclass
class Watch:
    """A channel that gets a card for every new case of the account opened outside Slack."""

    channel: str
    level: str  # all | high
    by: str
    since: str  # cases created after this are carded
    # case_id -> {"state": "posting" | "done", "at": epoch, "created": time}
    carded: dict[str, dict[str, Any]] = field(default_factory=dict)
    # With several accounts: the alias watched, or "all" (every account the channel may use; also
    # what a watch recorded before there were several accounts means).
    account: str = "all"

    def wants(self, case: Case) -> bool:
        return self.level == "all" or case.severity_code in HIGH_SEVERITIES


class Watches:
    """The watched channels, and the cards of new cases in them; a carded case is followed by `sync`."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        gateway: SupportGateway,
        cases: CaseService,
        sync: CaseSync,
        channels: Channels,
    ) -> None:
        self.settings = settings
        self.store = store
        self.gateway = gateway
        self.cases = cases
        self.sync = sync
        self.channels = channels
        self.grace = WATCH_GRACE

    def watch(self, channel: str, user: str, level: str = "all", account: str = "all") -> Watch:
        """`account`: an alias the caller checked this channel may use, or "all"."""
        self._require_admin(user)
        level = (level or "all").lower()
        if level not in ("all", "high"):
            raise UserInputError("watch_usage", word=level)
        table = self.store.table("watches")

        def change(raw: dict[str, Any] | None) -> dict[str, Any]:
            if raw:
                # Changing the level keeps what was already carded and when the watch began.
                return dict(raw, level=level, by=user, account=account)
            return asdict(Watch(channel=channel, level=level, by=user, since=aws_time(utcnow()), account=account))

        return Watch(**table.update(channel, change))

    def unwatch(self, channel: str, user: str) -> Watch | None:
        self._require_admin(user)
        table = self.store.table("watches")
        raw = table.get(channel)
        table.delete(channel)
        return Watch(**raw) if raw else None

    def _require_admin(self, user: str) -> None:
        if not self.settings.is_admin(user):
            raise NotAllowed("watch_admins_only")

    def all(self) -> list[Watch]:
        return [Watch(**raw) for raw in self.store.table("watches").values() if raw]

    def card_new_cases(self) -> int:
        """Card every new case of the account in the channels that watch for them. Returns cards posted."""
        watches = self.all()
        if not watches:
            return 0
        now = utcnow()
        starts = [parse_aws_time(w.since) or now for w in watches]
        after = max(min(starts), now - WATCH_RETAIN)
        cases = sorted(
            self.gateway.list_cases(include_resolved=False, after_time=aws_time(after)), key=lambda c: c.time_created
        )
        posted = 0
        for watch in watches:
            since = parse_aws_time(watch.since) or now
            for case in cases:
                created = parse_aws_time(case.time_created)
                if created is None or created <= since or now - created < self.grace or not watch.wants(case):
                    continue
                if not self._covers(watch, case):
                    continue  # another account's, or one this channel may not use
                entry = watch.carded.get(case.case_id) or {}
                if entry.get("state") == "done":
                    continue
                record = self.cases.record(case.case_id)
                if record is not None and record.opened_by:
                    continue  # opened from Slack: its opener's channel has the card already
                try:
                    posted += self._card(watch, case, entry)
                except (BotError, OSError) as error:
                    logger.warning("could not card case %s in %s: %s", case.case_id, watch.channel, error)
                    break
            self._prune_carded(watch.channel, now)
        return posted

    def _covers(self, watch: Watch, case: Case) -> bool:
        """Whether the case's account is watched here: one the channel may use, and the one named."""
        if not isinstance(self.gateway, AccountGateways):
            return True
        account = self.gateway.account_of(case.case_id)
        return account.allowed_in(watch.channel) and watch.account in ("all", account.alias)

    def _card(self, watch: Watch, case: Case, entry: dict[str, Any]) -> int:
        cases = self.cases
        if cases.link_in(case.case_id, watch.channel) is not None:
            self._set_carded(watch.channel, case, "done")
            return 0
        if entry.get("state") == "posting":
            # A crash between the post and the link may have left a card without a link: replace it.
            orphan = cases.find_card(
                watch.channel, case.case_id, oldest=float(entry.get("at", 0)) - RECONCILE_MARGIN_SECONDS
            )
            if orphan:
                self.channels.delete(watch.channel, orphan)
        # Claimed in the store: the poller's cycle and an EventBridge event may card the same case at once.
        if not self._claim_carding(watch.channel, case, entry):
            return 0
        # Written before the card: the thread of a watched case tells the whole story.
        self.sync.follow_whole_case(case, watch.channel)
        cases.post_card(case, watch.channel, linked_by=watch.by)
        self._set_carded(watch.channel, case, "done")
        try:
            self.sync.sync_case(case.case_id)  # the opening communication, without waiting a cycle
        except BotError as error:  # what sync_case could not finish, the poller does
            logger.warning("first sync of watched case %s deferred: %s", case.case_id, error)
        return 1

    def _claim_carding(self, channel: str, case: Case, seen: dict[str, Any]) -> bool:
        """Mark the case "posting" in this channel only if its entry is still what this caller saw:
        of two callers that saw the same entry, exactly one carries on."""
        claimed = False

        def change(raw: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal claimed
            carded = dict((raw or {}).get("carded") or {})
            if not raw or (carded.get(case.case_id) or {}) != seen:
                return raw
            claimed = True
            carded[case.case_id] = {"state": "posting", "at": time.time(), "created": case.time_created}
            return dict(raw, carded=carded)

        self.store.table("watches").update(channel, change)
        return claimed

    def _set_carded(self, channel: str, case: Case, value: str) -> None:
        def change(raw: dict[str, Any] | None) -> dict[str, Any] | None:
            if not raw:
                return raw
            carded = dict(raw.get("carded") or {})
            carded[case.case_id] = {"state": value, "at": time.time(), "created": case.time_created}
            return dict(raw, carded=carded)

        self.store.table("watches").update(channel, change)

    def _prune_carded(self, channel: str, now: datetime) -> None:
        # Cases older than the look-back window are never listed again, so their entries can go.
        horizon = now - WATCH_RETAIN - timedelta(days=1)

        def old(entry: dict[str, Any]) -> bool:
            created = parse_aws_time(entry.get("created"))
            return entry.get("state") == "done" and created is not None and created < horizon

        raw = self.store.table("watches").get(channel)
        if raw and any(old(e) for e in (raw.get("carded") or {}).values()):
            self.store.table("watches").update(
                channel,
                lambda r: dict(r, carded={k: e for k, e in (r.get("carded") or {}).items() if not old(e)}) if r else r,
            )

"""Watched channels: a card, and a thread that tells the whole case, for every new case opened outside Slack.

Records this module owns in the store:
- watches: channel -> Watch (per account watched: the level, who, since when; and which cases it has carded)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
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


LEVELS = ("all", "high")
OFF = "off"  # `unwatch <account>` under a watch of every account: that one account left out
EVERY = "all"  # the accounts key for every account the channel may use


@dataclass
class Watch:
    """A channel that gets a card for every new case opened outside Slack, per account it watches.

    `accounts`: "all" (every account the channel may use; also what one account means) or an alias
    -> {"level": all | high | off, "by": who, "since": cases created after this are carded}. An
    alias's own entry overrides "all". `carded` is per channel: a case is carded once here, claimed
    in the store (see Watches._claim_carding)."""

    channel: str
    accounts: dict[str, dict[str, str]] = field(default_factory=dict)
    # case_id -> {"state": "posting" | "done", "at": epoch, "created": time}
    carded: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_record(cls, raw: dict[str, Any]) -> Watch:
        accounts = raw.get("accounts")
        if not isinstance(accounts, dict):
            # The previous release's one watch per channel: {level, by, since, account}.
            entry = {"level": str(raw.get("level") or "all"), "by": str(raw.get("by") or ""), "since": raw.get("since")}
            accounts = {str(raw.get("account") or EVERY): entry}
        return cls(channel=str(raw.get("channel") or ""), accounts=dict(accounts), carded=dict(raw.get("carded") or {}))

    def to_record(self) -> dict[str, Any]:
        return {"channel": self.channel, "accounts": self.accounts, "carded": self.carded}

    def entry(self, alias: str) -> dict[str, str] | None:
        """What this channel watches of the account `alias` ("" with one account), None: nothing."""
        found = self.accounts.get(alias) if alias else None
        found = found or self.accounts.get(EVERY)
        return found if found and found.get("level") != OFF else None

    def wants(self, case: Case, alias: str = "") -> bool:
        entry = self.entry(alias)
        if entry is None:
            return False
        return entry.get("level") == "all" or case.severity_code in HIGH_SEVERITIES

    def since(self, alias: str = "") -> datetime | None:
        entry = self.entry(alias)
        return parse_aws_time(entry.get("since")) if entry else None

    @property
    def watched(self) -> list[tuple[str, str]]:
        """(account, level) of every entry, "all" first, for the answers."""
        every = (self.accounts.get(EVERY) or {}).get("level")
        # An account at the level of "all" is covered by it (it only keeps when its own watch began).
        shown = [(a, e.get("level", "all")) for a, e in self.accounts.items() if a == EVERY or e.get("level") != every]
        return sorted(shown, key=lambda p: (p[0] != EVERY, p))


def _watching(raw: dict[str, Any] | None, account: str, level: str, user: str, now: str) -> dict[str, Any]:
    """The channel's record with `account` watched at `level`: a later watch of the same account
    replaces its level (and keeps when it began); one of every account sets them all to its level."""
    watch = Watch.from_record(raw) if raw else Watch(channel="")
    # An account watched until now through "all" began then: its cases not carded yet stay due.
    previous = watch.accounts.get(account) or (watch.accounts.get(EVERY) if account != EVERY else None) or {}
    kept = previous.get("since") if previous.get("level") != OFF else None
    entry = {"level": level, "by": user, "since": kept or now}
    if account != EVERY:
        return dict(watch.to_record(), accounts={**watch.accounts, account: entry})
    # Each account watched until now keeps when it began (its cases not carded yet stay due), at the new level.
    watching = {a: e for a, e in watch.accounts.items() if a != EVERY and e.get("level") != OFF}
    accounts = {EVERY: entry, **{a: {**e, "level": level, "by": user} for a, e in watching.items()}}
    return dict(watch.to_record(), accounts=accounts)


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

    @property
    def several(self) -> bool:
        return isinstance(self.gateway, AccountGateways)

    def migrate(self) -> int:
        """Rewrite the previous release's one-watch records in today's shape (at start; reading
        either shape works regardless). Returns how many were rewritten."""
        table = self.store.table("watches")
        legacy = [key for key, raw in table.items() if isinstance(raw, dict) and "accounts" not in raw]
        for key in legacy:
            table.update(key, lambda raw: Watch.from_record(raw).to_record() if isinstance(raw, dict) else raw)
        if legacy:
            logger.info("watches: %d channel(s) migrated to watches per account", len(legacy))
        return len(legacy)

    def watch(self, channel: str, user: str, level: str = "all", account: str = EVERY) -> tuple[Watch, bool]:
        """`account`: an alias the caller checked this channel may use, or "all". Returns the channel's
        watch now, and whether this changed it."""
        self._require_admin(user)
        level = (level or "all").lower()
        if level not in LEVELS:
            raise UserInputError("watch_usage", word=level)
        account = account if self.several else EVERY  # one account: nothing to tell apart
        before: dict[str, Any] = {}

        def change(raw: dict[str, Any] | None) -> dict[str, Any]:
            before.update(Watch.from_record(raw).accounts if raw else {})
            return dict(_watching(raw, account, level, user, aws_time(utcnow())), channel=channel)

        watch = Watch.from_record(self.store.table("watches").update(channel, change))
        levels = {a: e.get("level") for a, e in before.items()}
        return watch, levels != {a: e.get("level") for a, e in watch.accounts.items()}

    def unwatch(self, channel: str, user: str, account: str = "") -> tuple[Watch | None, Watch | None]:
        """Stop every watch of the channel, or (`account`) that account's only. Returns (before, after)."""
        self._require_admin(user, "unwatch_admins_only")
        table = self.store.table("watches")
        before: list[Watch] = []

        def change(raw: dict[str, Any] | None) -> dict[str, Any] | None:
            if not raw:
                return raw
            watch = Watch.from_record(raw)
            before.append(watch)
            accounts = dict(watch.accounts)
            if EVERY in accounts and account and account != EVERY:
                accounts[account] = {"level": OFF, "by": user, "since": aws_time(utcnow())}
            else:
                accounts.pop(account, None)
            if not any(e.get("level") != OFF for e in accounts.values()):
                # Decided in the same atomic write: a delete after it could drop another replica's new watch.
                return None
            return dict(watch.to_record(), accounts=accounts)

        if not account or account == EVERY or not self.several:
            raw = table.get(channel)
            table.delete(channel)
            return (Watch.from_record(raw) if raw else None), None
        written = table.update(channel, change) if table.get(channel) else None
        return (before[0] if before else None), (Watch.from_record(written) if written else None)

    def _require_admin(self, user: str, refusal: str = "watch_admins_only") -> None:
        if not self.settings.is_admin(user):
            raise NotAllowed(refusal)

    def all(self) -> list[Watch]:
        return [Watch.from_record(raw) for raw in self.store.table("watches").values() if raw]

    def card_new_cases(self) -> int:
        """Card every new case of the account in the channels that watch for them. Returns cards posted."""
        watches = self.all()
        if not watches:
            return 0
        now = utcnow()
        starts = [parse_aws_time(e.get("since")) or now for w in watches for e in w.accounts.values()]
        after = max(min(starts, default=now), now - WATCH_RETAIN)
        cases = sorted(
            self.gateway.list_cases(include_resolved=False, after_time=aws_time(after)), key=lambda c: c.time_created
        )
        posted = 0
        for watch in watches:
            for case in cases:
                alias = self._usable_alias(watch, case)
                if alias is None:
                    continue  # an account this channel may not use
                since = watch.since(alias)
                created = parse_aws_time(case.time_created)
                if since is None or created is None or created <= since or now - created < self.grace:
                    continue
                if not watch.wants(case, alias):
                    continue
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

    def _usable_alias(self, watch: Watch, case: Case) -> str | None:
        """The alias of the case's account ("" with one account); None where the channel may not use it."""
        if not isinstance(self.gateway, AccountGateways):
            return ""
        account = self.gateway.account_of(case.case_id)
        return account.alias if account.allowed_in(watch.channel) else None

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
        watcher = watch.entry(case.account) or {}
        cases.post_card(case, watch.channel, linked_by=str(watcher.get("by") or ""))
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

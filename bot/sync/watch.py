"""Watched channels: a card, and a thread that tells the whole case, for every new case opened outside Slack.

Records this module owns in the store:
- watches: channel -> Watch (the level, and which cases it has carded)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from bot.domain import HIGH_SEVERITIES, Case, parse_aws_time
from bot.errors import BotError, NotAllowed, UserInputError
from bot.sync.poster import RECONCILE_MARGIN_SECONDS
from bot.sync.state import aws_time, utcnow

if TYPE_CHECKING:
    from bot.services import Services
    from bot.sync.cycle import CaseSync

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

    def wants(self, case: Case) -> bool:
        return self.level == "all" or case.severity_code in HIGH_SEVERITIES


class Watches:
    """The watched channels, and the cards of new cases in them; a carded case is followed by `sync`."""

    def __init__(self, services: Services, sync: CaseSync) -> None:
        self.services = services
        self.store = services.store
        self.gateway = services.gateway
        self.slack = services.slack
        self.sync = sync
        self.grace = WATCH_GRACE

    def watch(self, channel: str, user: str, level: str = "all") -> Watch:
        self._require_admin(user)
        level = (level or "all").lower()
        if level not in ("all", "high"):
            raise UserInputError("watch_usage", word=level)
        table = self.store.table("watches")

        def change(raw: dict[str, Any] | None) -> dict[str, Any]:
            if raw:
                # Changing the level keeps what was already carded and when the watch began.
                return dict(raw, level=level, by=user)
            return asdict(Watch(channel=channel, level=level, by=user, since=aws_time(utcnow())))

        return Watch(**table.update(channel, change))

    def unwatch(self, channel: str, user: str) -> Watch | None:
        self._require_admin(user)
        table = self.store.table("watches")
        raw = table.get(channel)
        table.delete(channel)
        return Watch(**raw) if raw else None

    def _require_admin(self, user: str) -> None:
        if not self.services.settings.is_admin(user):
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
                entry = watch.carded.get(case.case_id) or {}
                if entry.get("state") == "done":
                    continue
                record = self.services.cases.record(case.case_id)
                if record is not None and record.opened_by:
                    continue  # opened from Slack: its opener's channel has the card already
                try:
                    posted += self._card(watch, case, entry)
                except (BotError, SlackApiError, OSError) as error:
                    logger.warning("could not card case %s in %s: %s", case.case_id, watch.channel, error)
                    break
            self._prune_carded(watch.channel, now)
        return posted

    def _card(self, watch: Watch, case: Case, entry: dict[str, Any]) -> int:
        cases = self.services.cases
        if cases.link_in(case.case_id, watch.channel) is not None:
            self._set_carded(watch.channel, case, "done")
            return 0
        if entry.get("state") == "posting":
            # A crash between the post and the link may have left a card without a link: replace it.
            orphan = self._find_card(watch.channel, case.case_id, float(entry.get("at", 0)) - RECONCILE_MARGIN_SECONDS)
            if orphan:
                self.slack.chat_delete(channel=watch.channel, ts=orphan)
        # Written before the card: the thread of a watched case tells the whole story.
        self.sync.follow_whole_case(case, watch.channel)
        self._set_carded(watch.channel, case, "posting")
        cases.post_card(case, watch.channel, linked_by=watch.by)
        self._set_carded(watch.channel, case, "done")
        try:
            self.sync.sync_case(case.case_id)  # the opening communication, without waiting a cycle
        except BotError as error:  # what sync_case could not finish, the poller does
            logger.warning("first sync of watched case %s deferred: %s", case.case_id, error)
        return 1

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

    def _find_card(self, channel: str, case_id: str, oldest: float) -> str | None:
        """The ts of a card of this case posted in the channel since `oldest` (its buttons carry the case ID)."""
        cursor = None
        while True:
            response = self.slack.conversations_history(
                channel=channel, oldest=f"{max(oldest, 0):.6f}", limit=200, cursor=cursor
            )
            for message in response.get("messages") or []:
                if message.get("bot_id") and _has_case_button(message.get("blocks") or [], case_id):
                    return message["ts"]
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None


def _has_case_button(blocks: Iterable[dict[str, Any]], case_id: str) -> bool:
    return any(
        element.get("value") == case_id
        for block in blocks
        if block.get("type") == "actions"
        for element in block.get("elements") or []
    )

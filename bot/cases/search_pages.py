"""The pages of a `search`: its matching cases are kept in the store under a random token, so that Next
asks AWS nothing and every page comes from the same list (no duplicate, no gap, whatever case arrives
meanwhile). A token lives as long as Slack lets the answer be replaced (30 minutes); who may use it,
and where, is checked at each click, and the cases shown are those the channel may use then.

Records this module owns in the store:
- searches: token -> {"user", "channel", "q", "at", "cases": [case fields], "total", "unreachable"};
  the token starts with when it was kept ("<hex seconds>.<random>"), so that pruning by age reads
  keys, never the records of up to 500 cases each.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from bot.cases.search import SearchResult
from bot.domain import Case
from bot.errors import NotAllowed, UserInputError
from bot.store.backend import Store

TTL_SECONDS = 30 * 60  # a response_url replaces the answer for 30 minutes: no Next is clicked later
PRUNE_EVERY_SECONDS = 60  # per process: expired searches wait a minute more at most, unread
MAX_KEPT = 500  # 100 pages of 5: more than anyone pages through, and a record of a few hundred KB at most
# What a result line shows of a case; its communications are never kept.
KEPT_FIELDS = tuple(
    f.name for f in fields(Case) if f.name not in ("recent_communications", "more_communications", "cc_email_addresses")
)


@dataclass(frozen=True)
class KeptSearch:
    token: str
    text: str  # the words after `search`, for the header
    cases: list[Case]
    total: int  # how many matched, including those past MAX_KEPT
    unreachable: list[tuple[str, str, str]]


class SearchPages:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._pruned_at: float | None = None
        self._prune_lock = threading.Lock()

    @property
    def table(self) -> Any:
        return self.store.table("searches")

    def keep(self, result: SearchResult, *, text: str, user: str, channel: str) -> KeptSearch:
        now = self.store.now()
        self._prune_when_due(now)
        token = f"{int(now):x}.{secrets.token_urlsafe(12)}"
        kept = result.cases[:MAX_KEPT]
        self.table.put(
            token,
            {
                "user": user,
                "channel": channel,
                "q": text,
                "at": now,
                "cases": [{name: getattr(case, name) for name in KEPT_FIELDS} for case in kept],
                "total": len(result.cases),
                "unreachable": [list(u) for u in result.unreachable],
            },
        )
        return KeptSearch(token, text, list(kept), len(result.cases), list(result.unreachable))

    def load(self, token: str, *, user: str, channel: str, visible: Callable[[Case], bool]) -> KeptSearch:
        """The kept search for its own person and channel, only the cases `visible` there now."""
        record = self.table.get(token) if token else None
        if not isinstance(record, dict) or self.store.now() - float(record.get("at") or 0) > TTL_SECONDS:
            raise UserInputError("search_expired")
        if record.get("user") != user or record.get("channel") != channel:
            raise NotAllowed("search_not_yours")
        cases = [Case(**{k: v for k, v in raw.items() if k in KEPT_FIELDS}) for raw in record.get("cases") or []]
        shown = [case for case in cases if visible(case)]
        total = int(record.get("total") or 0) - (len(cases) - len(shown))
        unreachable = [(str(a), str(i), str(c)) for a, i, c in record.get("unreachable") or []]
        return KeptSearch(token, str(record.get("q") or ""), shown, total, unreachable)

    def _prune_when_due(self, now: float) -> None:
        with self._prune_lock:
            if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY_SECONDS:
                return
            self._pruned_at = now
        for key in list(self.table.keys()):
            kept_at = _kept_at(key)
            if kept_at is None:
                # Kept by the previous release (a token without its time): its record says when.
                record = self.table.get(key)
                kept_at = float(record.get("at") or 0) if isinstance(record, dict) else 0.0
            if now - kept_at > TTL_SECONDS:
                self.table.delete(key)


def _kept_at(token: str) -> float | None:
    stamp, dot, _ = token.partition(".")
    if not dot or not stamp.isascii() or not stamp.isalnum():
        return None
    try:
        return float(int(stamp, 16))
    except ValueError:
        return None

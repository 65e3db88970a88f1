"""What clicking Refresh checks did, and a refresh whose follow-up the scheduler worker still owes, as
recorded in the store (refresh.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain import parse_aws_time


@dataclass(frozen=True)
class RefreshOutcome:
    """What clicking "Refresh checks" did."""

    started: tuple[str, ...] = ()
    running: tuple[str, ...] = ()  # a refresh someone else asked for is still under way
    automatic: int = 0  # checks Trusted Advisor refreshes by itself
    waiting: tuple[tuple[str, int], ...] = ()  # (check ID, ms until it may be refreshed again)
    failed: int = 0
    already_pending: bool = False
    # With several accounts: what each account follows, and the accounts that could not be asked.
    followed_in: tuple[tuple[str, tuple[str, ...]], ...] = ()
    unreachable: tuple[tuple[str, str, str], ...] = ()  # (alias, account ID, AWS code)

    @property
    def followed(self) -> tuple[str, ...]:
        return self.started + self.running

    @classmethod
    def merged(cls, outcomes: Sequence[RefreshOutcome]) -> RefreshOutcome:
        """One answer for a roll-up: the accounts' outcomes added up."""
        return cls(
            started=tuple(c for o in outcomes for c in o.started),
            running=tuple(c for o in outcomes for c in o.running),
            automatic=sum(o.automatic for o in outcomes),
            waiting=tuple(w for o in outcomes for w in o.waiting),
            failed=sum(o.failed for o in outcomes),
            followed_in=tuple(f for o in outcomes for f in o.followed_in),
            unreachable=tuple(u for o in outcomes for u in o.unreachable),
        )

    def to_record(self) -> dict[str, Any]:
        """As JSON for the work journal (the progress of a refresh being started, and its outcome)."""
        return {
            "started": list(self.started),
            "running": list(self.running),
            "automatic": self.automatic,
            "waiting": [list(w) for w in self.waiting],
            "failed": self.failed,
            "already_pending": self.already_pending,
            "followed_in": [[alias, list(ids)] for alias, ids in self.followed_in],
            "unreachable": [list(u) for u in self.unreachable],
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RefreshOutcome:
        return cls(
            started=tuple(str(c) for c in record.get("started") or ()),
            running=tuple(str(c) for c in record.get("running") or ()),
            automatic=int(record.get("automatic") or 0),
            waiting=tuple((str(c), int(ms)) for c, ms in record.get("waiting") or ()),
            failed=int(record.get("failed") or 0),
            already_pending=bool(record.get("already_pending")),
            followed_in=tuple((str(a), tuple(str(c) for c in ids)) for a, ids in record.get("followed_in") or ()),
            unreachable=tuple((str(a), str(i), str(c)) for a, i, c in record.get("unreachable") or ()),
        )

    @property
    def next_refreshable_in(self) -> timedelta | None:
        if not self.waiting:
            return None
        return timedelta(milliseconds=min(ms for _, ms in self.waiting))


@dataclass(frozen=True)
class PendingRefresh:
    """A refresh whose end the scheduler worker waits for, to post the follow-up in the thread."""

    channel: str
    thread_ts: str
    # alias -> the checks followed in that account ("": the gateway's default, as before several accounts)
    checks: dict[str, tuple[str, ...]]
    user: str
    started_at: datetime
    next_poll_at: datetime
    deadline: datetime
    posting: bool = False  # set before the follow-up is posted: it is never posted twice
    # The digest's account, as its button named it: "" (the channel's default), an alias, or "all".
    account: str = ""
    # The work journal record of the click that noted it: until that record ends (a replica died
    # before it did, and it runs again), the follow-up waits, so the rerun finds it still owed.
    job: str = ""

    @property
    def key(self) -> str:
        return pending_key(self.channel, self.thread_ts)

    @property
    def check_ids(self) -> tuple[str, ...]:
        return tuple(check_id for ids in self.checks.values() for check_id in ids)

    def to_record(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "thread_ts": self.thread_ts,
            "checks": {alias: list(ids) for alias, ids in self.checks.items()},
            "account": self.account,
            "user": self.user,
            "started_at": self.started_at.isoformat(),
            "next_poll_at": self.next_poll_at.isoformat(),
            "deadline": self.deadline.isoformat(),
            "posting": self.posting,
            "job": self.job,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> PendingRefresh:
        checks = record.get("checks")
        if not isinstance(checks, dict):
            # Recorded before several accounts: the checks of the gateway's default account.
            checks = {"": record.get("check_ids") or []}
        return cls(
            channel=record["channel"],
            thread_ts=record["thread_ts"],
            checks={str(alias): tuple(ids or ()) for alias, ids in checks.items()},
            account=str(record.get("account") or ""),
            user=record.get("user", ""),
            started_at=parse_aws_time(record["started_at"]) or datetime.now(UTC),
            next_poll_at=parse_aws_time(record["next_poll_at"]) or datetime.now(UTC),
            deadline=parse_aws_time(record["deadline"]) or datetime.now(UTC),
            posting=bool(record.get("posting")),
            job=str(record.get("job") or ""),
        )


def pending_key(channel: str, thread_ts: str) -> str:
    return f"{channel}:{thread_ts}"

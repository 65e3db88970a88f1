"""A refresh whose follow-up the scheduler worker still owes, as recorded in the store (refresh.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.domain import parse_aws_time


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
        )


def pending_key(channel: str, thread_ts: str) -> str:
    return f"{channel}:{thread_ts}"

"""What a digest says, before any template: its records, the rows joined from Trusted Advisor's
answers, and build_digest (counts, categories, and what changed since the channel's previous digest).

Pure: no AWS, no Slack, no store. service.py collects and remembers; layout.py lays out.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bot.domain import CheckSummary, TrustedAdvisorCheck, parse_aws_time

ERROR, WARNING, OK, NOT_AVAILABLE = "error", "warning", "ok", "not_available"
STATUSES = (ERROR, WARNING, OK, NOT_AVAILABLE)  # most urgent first
ALERTS = frozenset({ERROR, WARNING})
STATUS_RANK = {status: rank for rank, status in enumerate(STATUSES)}

# The five categories Trusted Advisor has always had, in the console's order; categories the API
# adds later (operational_excellence exists today) follow in alphabetical order.
CLASSIC_CATEGORIES = ("cost_optimizing", "security", "fault_tolerance", "performance", "service_limits")
OTHER_CATEGORY = "other"


# Records -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckRow:
    """One Trusted Advisor check with what its summary says, as the digest uses it."""

    check_id: str
    name: str
    category: str
    status: str
    resources_flagged: int = 0
    resources_processed: int = 0
    resources_suppressed: int = 0
    estimated_monthly_savings: float | None = None
    refreshed_at: datetime | None = None
    has_summary: bool = True

    @property
    def is_alert(self) -> bool:
        return self.status in ALERTS


@dataclass(frozen=True)
class Snapshot:
    """What Trusted Advisor said at one moment."""

    rows: tuple[CheckRow, ...]
    collected_at: datetime
    account: str = ""
    sandbox: bool = False
    api_calls: int = 0
    # With several accounts: the alias of the account it is of (its state is kept per channel and account).
    alias: str = ""


@dataclass(frozen=True)
class DigestState:
    """What the previous digest of a channel showed: enough to tell what changed since."""

    statuses: dict[str, str]
    posted_at: datetime | None = None

    def to_record(self) -> dict[str, Any]:
        return {"statuses": self.statuses, "posted_at": self.posted_at.isoformat() if self.posted_at else None}

    @classmethod
    def from_record(cls, record: Any) -> DigestState | None:
        if not isinstance(record, dict) or not isinstance(record.get("statuses"), dict):
            return None
        return cls(statuses=dict(record["statuses"]), posted_at=parse_aws_time(record.get("posted_at")))

    @classmethod
    def of(cls, snapshot: Snapshot, posted_at: datetime) -> DigestState:
        return cls(statuses={row.check_id: row.status for row in snapshot.rows}, posted_at=posted_at)


@dataclass(frozen=True)
class RefreshReport:
    """How a followed refresh of the checks ended, for the follow-up digest (refresh.py)."""

    succeeded: int = 0
    abandoned: int = 0
    unfinished: int = 0


@dataclass(frozen=True)
class Change:
    """A check whose status moved since the channel's previous digest ("" when it is a new check)."""

    row: CheckRow
    previous: str


@dataclass(frozen=True)
class CategoryBreakdown:
    key: str
    counts: dict[str, int]
    total: int
    resources_flagged: int
    savings: float


@dataclass(frozen=True)
class Digest:
    snapshot: Snapshot
    counts: dict[str, int]  # every status in STATUSES, zero included
    categories: tuple[CategoryBreakdown, ...]
    savings_total: float
    savings_checks: int
    flagged: tuple[CheckRow, ...]  # every check in error or warning, most urgent first
    new_alerts: tuple[Change, ...]
    recovered: tuple[Change, ...]
    previous_at: datetime | None = None
    first: bool = True  # the channel had no digest before this one

    @property
    def total(self) -> int:
        return len(self.snapshot.rows)

    @property
    def oldest_refresh(self) -> datetime | None:
        times = [r.refreshed_at for r in self.snapshot.rows if r.refreshed_at]
        return min(times) if times else None

    @property
    def newest_refresh(self) -> datetime | None:
        times = [r.refreshed_at for r in self.snapshot.rows if r.refreshed_at]
        return max(times) if times else None


# Collection ----------------------------------------------------------------------------------


def normalize_status(status: str | None) -> str:
    value = (status or "").strip().lower()
    return value if value in STATUS_RANK else NOT_AVAILABLE


def clean_text(value: Any) -> str:
    """Control characters in a name from AWS would garble a terminal (escape sequences) or a line."""
    text = "" if value is None else str(value)
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    return text


def normalize_category(category: str | None) -> str:
    value = clean_text(category).strip().lower().replace(" ", "_").replace("-", "_")
    return value or OTHER_CATEGORY


def _savings(value: Any) -> float | None:
    """costOptimizing data is absent for most checks, and must never break a digest when odd."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _count(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError, OverflowError):
        return 0


def make_rows(checks: Iterable[TrustedAdvisorCheck], summaries: Iterable[CheckSummary]) -> tuple[CheckRow, ...]:
    """Join checks and their summaries; a check without a summary is shown as not available."""
    by_id = {s.check_id: s for s in summaries}
    rows: list[CheckRow] = []
    seen: set[str] = set()
    for check in checks:
        if not check.check_id or check.check_id in seen:
            continue
        seen.add(check.check_id)
        row = CheckRow(
            check_id=check.check_id,
            name=clean_text(check.name) or check.check_id,
            category=normalize_category(check.category),
            status=NOT_AVAILABLE,
            has_summary=False,
        )
        summary = by_id.get(check.check_id)
        if summary is not None:
            row = replace(
                row,
                status=normalize_status(summary.status),
                resources_flagged=_count(summary.resources_flagged),
                resources_processed=_count(summary.resources_processed),
                resources_suppressed=_count(summary.resources_suppressed),
                estimated_monthly_savings=_savings(summary.estimated_monthly_savings),
                refreshed_at=parse_aws_time(summary.timestamp),
                has_summary=True,
            )
        rows.append(row)
    return tuple(rows)


# Shaping -------------------------------------------------------------------------------------


def category_order(key: str) -> tuple[int, str]:
    if key in CLASSIC_CATEGORIES:
        return (CLASSIC_CATEGORIES.index(key), key)
    return (len(CLASSIC_CATEGORIES) + (key == OTHER_CATEGORY), key)


def urgency(row: CheckRow) -> tuple[Any, ...]:
    """Red before yellow; then the money on the table, the resources flagged, the name."""
    return (
        STATUS_RANK[row.status],
        -(row.estimated_monthly_savings or 0.0),
        -row.resources_flagged,
        row.name.lower(),
        row.check_id,
    )


def is_new_alert(previous: str | None, current: str) -> bool:
    """Turned red (from anything else) or yellow (from green, not available, or not there)."""
    if current == ERROR:
        return previous != ERROR
    if current == WARNING:
        return previous not in ALERTS
    return False


def is_recovered(previous: str | None, current: str) -> bool:
    return previous in ALERTS and current == OK


def build_digest(snapshot: Snapshot, previous: DigestState | None = None) -> Digest:
    rows = snapshot.rows
    counts = dict.fromkeys(STATUSES, 0)
    for row in rows:
        counts[row.status] += 1

    by_category: dict[str, list[CheckRow]] = {}
    for row in rows:
        by_category.setdefault(row.category, []).append(row)
    categories = []
    for key in sorted(by_category, key=category_order):
        members = by_category[key]
        category_counts = dict.fromkeys(STATUSES, 0)
        for row in members:
            category_counts[row.status] += 1
        categories.append(
            CategoryBreakdown(
                key=key,
                counts=category_counts,
                total=len(members),
                resources_flagged=sum(r.resources_flagged for r in members if r.is_alert),
                savings=math.fsum(r.estimated_monthly_savings or 0.0 for r in members),
            )
        )

    with_savings = [r.estimated_monthly_savings for r in rows if r.estimated_monthly_savings]
    flagged = tuple(sorted((r for r in rows if r.is_alert), key=urgency))

    new_alerts: tuple[Change, ...] = ()
    recovered: tuple[Change, ...] = ()
    if previous is not None:
        before = previous.statuses
        new_alerts = tuple(
            Change(row, before.get(row.check_id, ""))
            for row in flagged
            if is_new_alert(before.get(row.check_id), row.status)
        )
        recovered = tuple(
            Change(row, before[row.check_id])
            for row in sorted(rows, key=lambda r: (category_order(r.category), r.name.lower()))
            if is_recovered(before.get(row.check_id), row.status)
        )

    return Digest(
        snapshot=snapshot,
        counts=counts,
        categories=tuple(categories),
        savings_total=math.fsum(with_savings),
        savings_checks=len(with_savings),
        flagged=flagged,
        new_alerts=new_alerts,
        recovered=recovered,
        previous_at=previous.posted_at if previous else None,
        first=previous is None,
    )

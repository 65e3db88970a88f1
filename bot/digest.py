"""Trusted Advisor digests: collection, change tracking, shaping for the templates, posting.

What a digest says and how it looks lives in templates/digest*.j2; this module decides which
checks go in it, in what order, and how many fit in Slack's Block Kit limits. A digest is built in
three steps, each testable alone:

    collect (2 AWS calls) -> Snapshot
    build_digest(snapshot, previous state of the channel) -> Digest
    digest_blocks(digest, ...) / digest_text(digest, ...) -> Block Kit / terminal text
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from slack_sdk.errors import SlackApiError

from bot import render
from bot.domain import CheckResult, CheckSummary, TrustedAdvisorCheck, parse_aws_time
from bot.errors import AwsError, BotError, SlackError

logger = logging.getLogger(__name__)

LANGUAGE = "en"  # DescribeTrustedAdvisorChecks and ...CheckResult take an ISO 639-1 code

ERROR, WARNING, OK, NOT_AVAILABLE = "error", "warning", "ok", "not_available"
STATUSES = (ERROR, WARNING, OK, NOT_AVAILABLE)  # most urgent first
ALERTS = frozenset({ERROR, WARNING})
STATUS_RANK = {status: rank for rank, status in enumerate(STATUSES)}

# The five categories Trusted Advisor has always had, in the console's order; categories the API
# adds later (operational_excellence exists today) follow in alphabetical order.
CLASSIC_CATEGORIES = ("cost_optimizing", "security", "fault_tolerance", "performance", "service_limits")
OTHER_CATEGORY = "other"

# AWS answers InvalidParameterValue when asked to refresh (or for the refresh status of) a check
# that Trusted Advisor refreshes by itself; the code's spelling differs between endpoints.
AUTO_REFRESH_CODES = frozenset({"InvalidParameterValue", "InvalidParameterValueException"})
REFRESH_DONE = frozenset({"success", "abandoned", "none"})
REFRESH_RUNNING = frozenset({"enqueued", "processing", "in_progress"})
REFRESH_POLL_SECONDS = 10.0  # the AWS user guide's recommended polling interval
REFRESH_DEADLINE = timedelta(minutes=30)

# Records of the "digests" table beside the channel IDs (which never start with "@").
AUTO_REFRESH_KEY = "@auto-refresh"  # checks learned to refresh by themselves
PENDING_REFRESHES_KEY = "@refreshes"  # refreshes whose follow-up the worker still owes

# A Details table wider than this (in characters) would wrap in Slack's code block.
TABLE_MAX_WIDTH = 110
TABLE_CELL_WIDTH = 28
TABLE_MIN_CELL_WIDTH = 14
CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

MAX_FIT_ROUNDS = 30


def utcnow() -> datetime:
    return datetime.now(UTC)


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

    @property
    def alerts(self) -> int:
        return self.counts[ERROR] + self.counts[WARNING]


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


@dataclass(frozen=True)
class Shown:
    """The part of a list a message has room for, and how many were left out ("…and N more")."""

    items: tuple[Any, ...]
    more: int = 0

    @classmethod
    def cut(cls, items: Sequence[Any], limit: int) -> Shown:
        limit = max(0, limit)
        return cls(items=tuple(items[:limit]), more=max(0, len(items) - limit))

    def __bool__(self) -> bool:
        return bool(self.items) or self.more > 0


@dataclass(frozen=True)
class Limits:
    """How many items each list of the digest shows; digest_blocks shrinks them until Slack accepts."""

    new: int = 12
    recovered: int = 12
    top: int = 10
    categories: int = 10  # fields of one section: Slack allows 10

    def shrink(self, key: str, ratio: float) -> Limits:
        current = getattr(self, key)
        smaller = min(current - 1, int(current * ratio))
        return replace(self, **{key: max(0, smaller)})


TEXT_LIMITS = Limits(new=30, recovered=30, top=15, categories=1000)


@dataclass(frozen=True)
class RefreshOutcome:
    """What clicking "Refresh checks" did."""

    started: tuple[str, ...] = ()
    running: tuple[str, ...] = ()  # a refresh someone else asked for is still under way
    automatic: int = 0  # checks Trusted Advisor refreshes by itself
    waiting: tuple[tuple[str, int], ...] = ()  # (check ID, ms until it may be refreshed again)
    failed: int = 0
    already_pending: bool = False

    @property
    def followed(self) -> tuple[str, ...]:
        return self.started + self.running

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
    check_ids: tuple[str, ...]
    user: str
    started_at: datetime
    next_poll_at: datetime
    deadline: datetime
    posting: bool = False  # set before the follow-up is posted: it is never posted twice

    @property
    def key(self) -> str:
        return pending_key(self.channel, self.thread_ts)

    def to_record(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "thread_ts": self.thread_ts,
            "check_ids": list(self.check_ids),
            "user": self.user,
            "started_at": self.started_at.isoformat(),
            "next_poll_at": self.next_poll_at.isoformat(),
            "deadline": self.deadline.isoformat(),
            "posting": self.posting,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> PendingRefresh:
        return cls(
            channel=record["channel"],
            thread_ts=record["thread_ts"],
            check_ids=tuple(record.get("check_ids") or ()),
            user=record.get("user", ""),
            started_at=parse_aws_time(record["started_at"]) or utcnow(),
            next_poll_at=parse_aws_time(record["next_poll_at"]) or utcnow(),
            deadline=parse_aws_time(record["deadline"]) or utcnow(),
            posting=bool(record.get("posting")),
        )


@dataclass(frozen=True)
class RefreshReport:
    """How a followed refresh ended, for the follow-up message."""

    succeeded: int = 0
    abandoned: int = 0
    unfinished: int = 0


@dataclass(frozen=True)
class DetailsTable:
    """A check's flagged resources as fixed-width text lines, and the whole list as CSV."""

    row: CheckRow
    header: str
    lines: tuple[str, ...]
    total: int
    hidden_columns: int
    suppressed: int
    csv: str

    def shown(self, limit: int) -> Shown:
        return Shown.cut(self.lines, limit)


@dataclass(frozen=True)
class Posted:
    channel: str
    ts: str


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
        summary = by_id.get(check.check_id)
        if summary is None:
            rows.append(
                CheckRow(
                    check_id=check.check_id,
                    name=clean_text(check.name) or check.check_id,
                    category=normalize_category(check.category),
                    status=NOT_AVAILABLE,
                    has_summary=False,
                )
            )
            continue
        rows.append(
            CheckRow(
                check_id=check.check_id,
                name=clean_text(check.name) or check.check_id,
                category=normalize_category(check.category),
                status=normalize_status(summary.status),
                resources_flagged=_count(summary.resources_flagged),
                resources_processed=_count(summary.resources_processed),
                resources_suppressed=_count(summary.resources_suppressed),
                estimated_monthly_savings=_savings(summary.estimated_monthly_savings),
                refreshed_at=parse_aws_time(summary.timestamp),
            )
        )
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


def digest_context(
    digest: Digest,
    limits: Limits,
    *,
    zone: ZoneInfo,
    refresh: RefreshReport | None = None,
) -> dict[str, Any]:
    """What the digest templates receive: the digest, its lists cut to `limits`, times in `zone`."""
    snapshot = digest.snapshot

    def local(moment: datetime | None) -> datetime | None:
        return moment.astimezone(zone) if moment else None

    return {
        "d": digest,
        "account": snapshot.account,
        "sandbox": snapshot.sandbox,
        "now": local(snapshot.collected_at),
        "zone": zone.key,
        "previous_at": local(digest.previous_at),
        "oldest_refresh": local(digest.oldest_refresh),
        "newest_refresh": local(digest.newest_refresh),
        "statuses": STATUSES,
        "categories": Shown.cut(digest.categories, _fields_room(len(digest.categories), limits.categories)),
        "new_alerts": Shown.cut(digest.new_alerts, limits.new),
        "recovered": Shown.cut(digest.recovered, limits.recovered),
        "top": Shown.cut(digest.flagged, limits.top),
        "refresh": refresh,
    }


def _fields_room(count: int, limit: int) -> int:
    """When the list is cut, one field goes to "…and N more"."""
    return count if count <= limit else max(0, limit - 1)


# Block Kit limits ----------------------------------------------------------------------------


def block_problems(blocks: list[dict[str, Any]], max_blocks: int = render.MAX_MESSAGE_BLOCKS) -> dict[str, float]:
    """block_id -> how much it must shrink (limit / size) for every block over a Block Kit limit.

    "" stands for the whole message (too many blocks). Templates give a block_id named after the
    Limits field that feeds it ("digest_new" <- Limits.new) to every block that can grow.
    """
    problems: dict[str, float] = {}

    def over(block_id: str, size: int, limit: int) -> None:
        if size > limit:
            problems[block_id] = min(problems.get(block_id, 1.0), limit / size)

    over("", len(blocks), max_blocks)
    for block in blocks:
        block_id = block.get("block_id", "?")
        kind = block.get("type")
        if kind == "header":
            over(block_id, len(block["text"]["text"]), render.MAX_HEADER_TEXT)
        elif kind == "section":
            if "text" in block:
                over(block_id, len(block["text"]["text"]), render.MAX_SECTION_TEXT)
            fields = block.get("fields") or []
            over(block_id, len(fields), render.MAX_SECTION_FIELDS)
            for item in fields:
                over(block_id, len(item["text"]), render.MAX_FIELD_TEXT)
        elif kind == "context":
            elements = block.get("elements") or []
            over(block_id, len(elements), render.MAX_CONTEXT_ELEMENTS)
            for item in elements:
                over(block_id, len(item.get("text", "")), render.MAX_SECTION_TEXT)
    return problems


def render_fitted(
    template: str, make_context: Callable[[Limits], dict[str, Any]], limits: Limits
) -> tuple[list[dict[str, Any]], Limits]:
    """Render, and while a block is over a Slack limit, show fewer items in the list that feeds it.

    The templates decide the wording, so only rendering tells how long a list's text really is
    (escaping can make a name five times longer); a few renders cost milliseconds.
    """
    rendered: list[dict[str, Any]] = []
    for _ in range(MAX_FIT_ROUNDS):
        rendered = render.render_json(template, **make_context(limits))
        problems = block_problems(rendered)
        if not problems:
            return rendered, limits
        shrunk = limits
        for block_id, ratio in problems.items():
            key = "top" if block_id == "" else block_id.removeprefix("digest_").split("_")[0]
            if key in ("new", "recovered", "top", "categories"):
                shrunk = shrunk.shrink(key, ratio)
        if shrunk == limits:
            break  # a block no list feeds is over: render.fit_blocks truncates it below
        limits = shrunk
    logger.warning("%s: fell back to truncation to stay within Block Kit limits", template)
    return render.fit_blocks(rendered, render.MAX_MESSAGE_BLOCKS), limits


def digest_blocks(
    digest: Digest, *, zone: ZoneInfo, limits: Limits | None = None, refresh: RefreshReport | None = None
) -> list[dict[str, Any]]:
    blocks, _ = render_fitted(
        "digest.json.j2",
        lambda lim: digest_context(digest, lim, zone=zone, refresh=refresh),
        limits or Limits(),
    )
    return blocks


def digest_text(digest: Digest, *, zone: ZoneInfo, limits: Limits = TEXT_LIMITS) -> str:
    """The terminal form: same content, plain text."""
    template = render.environment().get_template("digest.txt.j2")
    return template.render(**digest_context(digest, limits, zone=zone)).rstrip() + "\n"


def digest_fallback(digest: Digest) -> str:
    """The notification text Slack shows where blocks are not rendered."""
    return render.text("digest_fallback", d=digest, account=digest.snapshot.account)


# Details of one check --------------------------------------------------------------------------


def table_words() -> dict[str, str]:
    """Column headings and the file name the bot adds to AWS's columns: they live in a template."""
    return render.environment().get_template("digest_common.j2").module.table_words


def _cell(value: Any, width: int) -> str:
    # One line per row: newlines would break the table, backticks would close the code block.
    text = " ".join(str(value if value is not None else "").split()).replace("`", "'")
    return render.truncate(text, width)


def _csv_cell(value: Any) -> str:
    # A spreadsheet runs a cell that starts with = + - @ as a formula; resource names are not ours.
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(CSV_FORMULA_PREFIXES) else text


def details_table(check: TrustedAdvisorCheck, row: CheckRow, result: CheckResult) -> DetailsTable:
    """The flagged resources, in the check's own metadata columns (the console's Excel download)."""
    resources = [r for r in result.flagged_resources if not r.is_suppressed]
    resources.sort(key=lambda r: (STATUS_RANK.get(normalize_status(r.status), 9), r.region, r.resource_id))
    columns = [str(c or "") for c in check.metadata]
    if columns:
        table = [[(r.metadata[i] if i < len(r.metadata) else "") for i in range(len(columns))] for r in resources]
    else:
        table = [[r.region, r.resource_id] for r in resources]
    words = table_words()
    headings = columns or [words["region"], words["resource"]]

    # Drop columns empty in every row; narrow the widest columns, then drop the last ones, until a
    # row fits one line of a Slack code block (a wrapped table is unreadable).
    kept = [i for i in range(len(headings)) if any((row_cells[i] or "") for row_cells in table)] or list(
        range(len(headings))
    )
    natural = {
        i: min(TABLE_CELL_WIDTH, max([len(_cell(headings[i], 99))] + [len(_cell(r[i], 99)) for r in table]))
        for i in kept
    }
    while len(kept) > 1 and sum(min(natural[i], TABLE_MIN_CELL_WIDTH) + 2 for i in kept) > TABLE_MAX_WIDTH:
        kept.pop()
    while sum(natural[i] + 2 for i in kept) > TABLE_MAX_WIDTH:
        widest = max(kept, key=lambda i: natural[i])
        if natural[widest] <= TABLE_MIN_CELL_WIDTH:
            break
        natural[widest] -= 1
    widths = [(i, natural[i]) for i in kept]

    def line(cells: Sequence[Any]) -> str:
        return "  ".join(_cell(cells[i], w).ljust(w) for i, w in widths).rstrip()

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([words["status"], words["region"], words["resource"], *headings])
    for resource, cells in zip(resources, table, strict=True):
        writer.writerow([_csv_cell(v) for v in (resource.status, resource.region, resource.resource_id, *cells)])

    return DetailsTable(
        row=row,
        header=line(headings),
        lines=tuple(line(cells) for cells in table),
        total=len(resources),
        hidden_columns=len([i for i in range(len(headings)) if any((r[i] or "") for r in table)]) - len(widths),
        suppressed=len(result.flagged_resources) - len(resources),
        csv=buffer.getvalue(),
    )


def details_blocks(table: DetailsTable, rows: int = 40) -> tuple[list[dict[str, Any]], int]:
    """The Details message, and how many rows it has room for."""
    blocks, limits = render_fitted(
        "digest_details.json.j2",
        lambda lim: {"t": table, "shown": table.shown(lim.top), "row": table.row},
        Limits(top=rows),
    )
    return blocks, min(limits.top, table.total)


# The service -------------------------------------------------------------------------------------


class DigestService:
    """Collects digests and posts them; knows nothing of Slack payloads, only of channels and threads."""

    def __init__(self, services: Any, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.services = services
        self.clock = clock
        self.language = LANGUAGE
        self.refresh_poll_seconds = REFRESH_POLL_SECONDS
        self.refresh_deadline = REFRESH_DEADLINE
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
                filename=_csv_name(row),
                content=table.csv,
                title=render.text("digest_csv_title", row=row),
                comment=render.text("digest_csv_comment", row=row, total=table.total),
            )

    # Refresh

    def learned_automatic(self) -> set[str]:
        return set(self.table.get(AUTO_REFRESH_KEY) or [])

    def _learn_automatic(self, check_ids: Iterable[str]) -> None:
        ids = set(check_ids)
        if ids:
            self.table.update(AUTO_REFRESH_KEY, lambda known: sorted(set(known or []) | ids), [])

    def refresh_statuses(self, check_ids: Sequence[str]) -> list[Any]:
        """Refresh statuses of many checks in one call; a check that refreshes by itself fails the
        whole call, so the batch is split to find it, and it is remembered and left out next time."""
        if not check_ids:
            return []
        try:
            return self.gateway.trusted_advisor_refresh_statuses(check_ids)
        except AwsError as error:
            if error.code not in AUTO_REFRESH_CODES:
                raise
            if len(check_ids) == 1:
                self._learn_automatic(check_ids)
                return []
        middle = len(check_ids) // 2
        return self.refresh_statuses(check_ids[:middle]) + self.refresh_statuses(check_ids[middle:])

    def refresh(self, channel: str, thread_ts: str, user: str) -> RefreshOutcome:
        """Ask Trusted Advisor to refresh every check that may be refreshed now; the scheduler
        worker then waits for them and posts the follow-up in the digest's thread."""
        now = self.clock()
        key = pending_key(channel, thread_ts)
        if key in self._pending():
            return RefreshOutcome(already_pending=True)
        checks = self.gateway.trusted_advisor_checks(self.language)
        automatic = self.learned_automatic()
        candidates = [c.check_id for c in checks if c.check_id not in automatic]
        statuses = self.refresh_statuses(candidates)
        running = tuple(s.check_id for s in statuses if s.status in REFRESH_RUNNING)
        waiting = [
            (s.check_id, s.millis_until_next_refreshable)
            for s in statuses
            if s.status not in REFRESH_RUNNING and s.millis_until_next_refreshable > 0
        ]
        refreshable = [
            s.check_id for s in statuses if s.status not in REFRESH_RUNNING and s.millis_until_next_refreshable <= 0
        ]
        started: list[str] = []
        learned: list[str] = []
        failed = 0
        for index, check_id in enumerate(refreshable):
            try:
                status = self.gateway.refresh_trusted_advisor_check(check_id)
            except AwsError as error:
                if error.code in AUTO_REFRESH_CODES:
                    learned.append(check_id)
                elif error.retryable:
                    # Throttled, or AWS in trouble: what was started is followed, the rest can wait.
                    logger.warning("refresh stopped after %d checks: %s", len(started), error)
                    failed += len(refreshable) - index
                    break
                else:
                    failed += 1
                continue
            if status.status not in REFRESH_RUNNING and status.millis_until_next_refreshable > 0:
                waiting.append((check_id, status.millis_until_next_refreshable))
            else:
                started.append(check_id)
        self._learn_automatic(learned)
        outcome = RefreshOutcome(
            started=tuple(started),
            running=running,
            automatic=len(self.learned_automatic() & {c.check_id for c in checks}),
            waiting=tuple(waiting),
            failed=failed,
        )
        if outcome.followed:
            pending = PendingRefresh(
                channel=channel,
                thread_ts=thread_ts,
                check_ids=outcome.followed,
                user=user,
                started_at=now,
                next_poll_at=now + timedelta(seconds=self.refresh_poll_seconds),
                deadline=now + self.refresh_deadline,
            )
            # Recorded before anyone relies on it: a restart still posts the follow-up.
            if not self._save_pending(pending, only_if_absent=True):
                return RefreshOutcome(already_pending=True)
        return outcome

    # Followed refreshes live in one record, so that a worker tick reads one small value.

    def _pending(self) -> dict[str, Any]:
        record = self.table.get(PENDING_REFRESHES_KEY)
        return record if isinstance(record, dict) else {}

    def _save_pending(self, pending: PendingRefresh, *, only_if_absent: bool = False) -> bool:
        saved = False

        def change(record: Any) -> dict[str, Any]:
            nonlocal saved
            current = dict(record) if isinstance(record, dict) else {}
            if only_if_absent and pending.key in current:
                return current
            current[pending.key] = pending.to_record()
            saved = True
            return current

        self.table.update(PENDING_REFRESHES_KEY, change, {})
        return saved

    def _drop_pending(self, pending: PendingRefresh) -> None:
        self.table.update(
            PENDING_REFRESHES_KEY,
            lambda record: {k: v for k, v in (record or {}).items() if k != pending.key},
            {},
        )

    def pending_refreshes(self) -> list[PendingRefresh]:
        return [PendingRefresh.from_record(r) for r in self._pending().values() if isinstance(r, dict)]

    def next_refresh_poll(self) -> datetime | None:
        times = [p.next_poll_at for p in self.pending_refreshes() if not p.posting]
        return min(times) if times else None

    def poll_refreshes(self, client: Any, now: datetime | None = None) -> int:
        """Check the followed refreshes that are due and settle those that are over (follow-up posted,
        or dropped when Slack refused it). Returns how many were settled."""
        now = now or self.clock()
        posted = 0
        for pending in self.pending_refreshes():
            if pending.posting:
                # A follow-up was being posted when the bot stopped; posting again could double it.
                logger.warning("refresh follow-up in %s may not have been posted; not retried", pending.channel)
                self._drop_pending(pending)
                continue
            if pending.next_poll_at > now:
                continue
            if self._follow_up(client, pending, now):
                posted += 1
            else:
                self._save_pending(replace(pending, next_poll_at=now + timedelta(seconds=self.refresh_poll_seconds)))
        return posted

    def _refresh_report(self, pending: PendingRefresh, now: datetime) -> RefreshReport | None:
        """None while the refresh is still under way and before its deadline."""
        statuses = {s.check_id: s.status for s in self.refresh_statuses(list(pending.check_ids))}
        running = sum(1 for s in statuses.values() if s in REFRESH_RUNNING)
        if running and now < pending.deadline:
            return None
        return RefreshReport(
            succeeded=sum(1 for s in statuses.values() if s == "success"),
            abandoned=sum(1 for s in statuses.values() if s == "abandoned"),
            unfinished=running,
        )

    def _follow_up(self, client: Any, pending: PendingRefresh, now: datetime) -> bool:
        """Post the updated digest in the thread once the refresh is over; False: look again later."""
        try:
            report = self._refresh_report(pending, now)
            if report is None:
                return False
            snapshot, blocks, text = self.prepare(pending.channel, refresh=report)
        except AwsError as error:
            logger.warning("refresh follow-up for %s postponed: %s", pending.channel, error)
            return False
        self._save_pending(replace(pending, posting=True))
        try:
            self.publish(client, pending.channel, snapshot, blocks, text, thread_ts=pending.thread_ts)
        except BotError as error:
            logger.warning("refresh follow-up for %s not posted: %s", pending.channel, error)
        finally:
            self._drop_pending(pending)
        return True


def pending_key(channel: str, thread_ts: str) -> str:
    return f"{channel}:{thread_ts}"


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


def _csv_name(row: CheckRow) -> str:
    safe = "".join(ch if ch.isalnum() else "-" for ch in row.name.lower()).strip("-")
    while "--" in safe:
        safe = safe.replace("--", "-")
    return table_words()["csv_name"].format(name=safe[:60] or row.check_id)


# The console -----------------------------------------------------------------------------------------


def print_digest(services: Any, *, as_json: bool, out: TextIO) -> int:
    """`python -m bot digest --print`: the digest on a terminal, without Slack and without
    touching any channel's change tracking."""
    digests: DigestService = services.digests
    zone = ZoneInfo(services.settings.digest_timezone)
    try:
        snapshot = digests.collect()
    except BotError as error:
        out.write(render.error_text(error) + "\n")
        return 1
    digest = build_digest(snapshot, None)
    if as_json:
        payload = {"text": digest_fallback(digest), "blocks": digest_blocks(digest, zone=zone)}
        out.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(digest_text(digest, zone=zone))
    return 0


__all__ = [
    "CheckRow",
    "Digest",
    "DigestService",
    "DigestState",
    "Limits",
    "Snapshot",
    "build_digest",
    "digest_blocks",
    "digest_text",
    "make_rows",
    "print_digest",
]

"""The digest laid out for Slack and for a terminal: its templates' context, each list cut to what
fits in Block Kit's limits ("…and N more"), the terminal text form, and the Details table of one
check with its CSV file.

What a digest says and how it looks lives in templates/digest*.j2; this module decides how many
items of each list fit, by rendering and measuring.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot import render
from bot.digest.shaping import STATUS_RANK, STATUSES, CheckRow, Digest, RefreshReport, normalize_status
from bot.domain import TrustedAdvisorCheck, TrustedAdvisorResult

logger = logging.getLogger(__name__)

# A Details table wider than this (in characters) would wrap in Slack's code block.
TABLE_MAX_WIDTH = 110
TABLE_CELL_WIDTH = 28
TABLE_MIN_CELL_WIDTH = 14
CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

MAX_FIT_ROUNDS = 30


# Lists cut to fit ----------------------------------------------------------------------------


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
        # Details buttons name the account the check results are of ("" with one account).
        "alias": snapshot.alias,
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
    module = render.environment().get_template("digest_common.j2").module
    words: dict[str, str] = vars(module)["table_words"]  # what the template exports
    return words


def csv_name(row: CheckRow) -> str:
    safe = "".join(ch if ch.isalnum() else "-" for ch in row.name.lower()).strip("-")
    while "--" in safe:
        safe = safe.replace("--", "-")
    return table_words()["csv_name"].format(name=safe[:60] or row.check_id)


def _cell(value: Any, width: int) -> str:
    # One line per row: newlines would break the table, backticks would close the code block.
    text = " ".join(str(value if value is not None else "").split()).replace("`", "'")
    return render.truncate(text, width)


def _csv_cell(value: Any) -> str:
    # A spreadsheet runs a cell that starts with = + - @ as a formula; resource names are not ours.
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(CSV_FORMULA_PREFIXES) else text


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


def details_table(check: TrustedAdvisorCheck, row: CheckRow, result: TrustedAdvisorResult) -> DetailsTable:
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
        # With no rows every column is "empty": nothing is hidden then, and no CSV is needed.
        hidden_columns=max(0, len([i for i in range(len(headings)) if any((r[i] or "") for r in table)]) - len(widths)),
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

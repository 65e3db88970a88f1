"""Trusted Advisor data for digest tests: realistic, hostile, and whatever size a test needs."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.digest.shaping import CheckRow, DigestState, Snapshot, make_rows
from bot.domain import CheckSummary, TrustedAdvisorCheck
from tests.support.fake_slack import block_problems

NOW = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
CATEGORIES = (
    "cost_optimizing",
    "security",
    "fault_tolerance",
    "performance",
    "service_limits",
    "operational_excellence",
)
STATUSES = ("ok", "warning", "error", "not_available")

HOSTILE_NAMES = (
    'Security Groups <script>alert("x")</script> & "quotes"',
    "Idle <@U123> load balancers <!channel> @here",
    "Emoji check 🚀🔥👩‍👩‍👧‍👦 ✓ — naïve café",
    "Back\\slash and \"double\" and 'single' quotes",
    "Line one\nLine two\r\n\ttabbed",
    "Mrkdwn *bold* _italic_ ~strike~ `code` ```block```",
    "Link <https://evil.example|click me> &amp; entity",
    "Null \x00 and escape \x1b[31m red",
    "ÜNÏCÖDÉ 名前 اسم שם",
    "x" * 5000,
    "&" * 3000,
)


def check(
    check_id: str, name: str = "", category: str = "security", metadata: Iterable[str] = ("Region", "Resource")
) -> TrustedAdvisorCheck:
    return TrustedAdvisorCheck(
        check_id=check_id, name=name or f"Check {check_id}", description="", category=category, metadata=tuple(metadata)
    )


def summary(
    check_id: str,
    status: str = "ok",
    *,
    flagged: int = 0,
    processed: int = 10,
    savings: float | None = None,
    timestamp: str = "2025-03-03T06:00:00Z",
) -> CheckSummary:
    return CheckSummary(
        check_id=check_id,
        status=status,
        timestamp=timestamp,
        has_flagged_resources=flagged > 0,
        resources_processed=processed,
        resources_flagged=flagged,
        estimated_monthly_savings=savings,
    )


def snapshot(rows: Iterable[CheckRow], *, account: str = "123456789012", at: datetime = NOW) -> Snapshot:
    return Snapshot(rows=tuple(rows), collected_at=at, account=account)


def generated(
    count: int, *, seed: int = 7, hostile: bool = False
) -> tuple[list[TrustedAdvisorCheck], list[CheckSummary]]:
    """`count` checks of every category and status, about one in ten without a summary."""
    rng = random.Random(seed)
    checks, summaries = [], []
    for i in range(count):
        check_id = f"chk{i:05d}"
        category = CATEGORIES[i % len(CATEGORIES)] if i % 17 else f"brand_new_category_{i % 3}"
        name = HOSTILE_NAMES[i % len(HOSTILE_NAMES)] + f" #{i}" if hostile else f"Generated check number {i}"
        checks.append(check(check_id, name, category))
        if i % 10 == 9:
            continue
        status = STATUSES[i % len(STATUSES)]
        processed = rng.randint(0, 10**6)
        savings = round(rng.uniform(0, 5000), 2) if category == "cost_optimizing" else None
        summaries.append(
            summary(check_id, status, flagged=rng.randint(0, processed), processed=processed, savings=savings)
        )
    return checks, summaries


def rows_of(count: int, **kwargs: Any) -> tuple[CheckRow, ...]:
    return make_rows(*generated(count, **kwargs))


def state(statuses: dict[str, str], at: datetime = NOW - timedelta(days=7)) -> DigestState:
    return DigestState(statuses=statuses, posted_at=at)


# What Slack enforces, checked here independently of the code under test ---------------------------


def all_texts(blocks: list[dict[str, Any]]) -> list[str]:
    texts = []
    for block in blocks:
        if "text" in block:
            texts.append(block["text"]["text"])
        texts.extend(f["text"] for f in block.get("fields") or [])
        texts.extend(e["text"] for e in block.get("elements") or [] if "text" in e and isinstance(e["text"], str))
        if "accessory" in block:
            texts.append(block["accessory"]["text"]["text"])
    return texts


def assert_valid_message(blocks: list[dict[str, Any]]) -> None:
    """Round-trips as JSON, obeys Block Kit's limits, and carries no live mention or link."""
    assert json.loads(json.dumps(blocks, ensure_ascii=False)) == blocks
    assert block_problems(blocks, max_blocks=50) == []
    assert len(blocks) <= 50
    ids = [b["block_id"] for b in blocks if "block_id" in b]
    assert len(ids) == len(set(ids)), "block_ids must be unique in a message"
    for block in blocks:
        assert len(block.get("block_id", "")) <= 255
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert len(block.get("text", {}).get("text", "")) <= 3000
            assert len(block.get("fields") or []) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields") or [])
        if block["type"] == "context":
            assert len(block["elements"]) <= 10
        for element in block.get("elements", []) + ([block["accessory"]] if "accessory" in block else []):
            if element.get("type") == "button":
                assert len(element["text"]["text"]) <= 75
                assert len(element.get("value", "")) <= 2000
                assert len(element["action_id"]) <= 255
    for text in all_texts(blocks):
        assert "<" not in text and ">" not in text, text[:200]
        assert "@here" not in text and "@channel" not in text

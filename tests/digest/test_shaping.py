"""Collection shaping and change tracking: what goes in a digest, before any template."""

from __future__ import annotations

import math

import pytest

from bot.digest.shaping import (
    NOT_AVAILABLE,
    DigestState,
    build_digest,
    category_order,
    is_new_alert,
    is_recovered,
    make_rows,
)
from tests.digest.factories import check, generated, snapshot, state, summary


def test_a_check_without_summary_is_not_available() -> None:
    rows = make_rows([check("a"), check("b")], [summary("a", "error", flagged=3)])

    assert [(r.check_id, r.status, r.has_summary) for r in rows] == [
        ("a", "error", True),
        ("b", NOT_AVAILABLE, False),
    ]


@pytest.mark.parametrize("raw, expected", [("OK", "ok"), ("weird", NOT_AVAILABLE), ("", NOT_AVAILABLE)])
def test_unknown_statuses_count_as_not_available(raw: str, expected: str) -> None:
    [row] = make_rows([check("a")], [summary("a", raw)])

    assert row.status == expected


@pytest.mark.parametrize("value", [None, float("nan"), float("inf"), -5.0, "12.5x", True])
def test_missing_or_odd_savings_are_ignored(value: object) -> None:
    [row] = make_rows([check("a", category="cost_optimizing")], [summary("a", "warning", savings=value)])

    assert row.estimated_monthly_savings is None


def test_summaries_of_unknown_checks_and_duplicate_checks_are_dropped() -> None:
    rows = make_rows([check("a"), check("a"), check("")], [summary("zzz", "error"), summary("a", "ok")])

    assert [r.check_id for r in rows] == ["a"]


def test_categories_beyond_the_classic_five_follow_them() -> None:
    keys = ["operational_excellence", "zeta", "security", "cost_optimizing", "other", "service_limits"]

    assert sorted(keys, key=category_order) == [
        "cost_optimizing",
        "security",
        "service_limits",
        "operational_excellence",
        "zeta",
        "other",
    ]


def test_counts_categories_and_savings_add_up() -> None:
    checks, summaries = generated(500)
    digest = build_digest(snapshot(make_rows(checks, summaries)))

    assert sum(digest.counts.values()) == 500
    assert sum(c.total for c in digest.categories) == 500
    by_status = {s: 0 for s in digest.counts}
    for category in digest.categories:
        for status, count in category.counts.items():
            by_status[status] += count
    assert by_status == digest.counts
    expected = math.fsum(s.estimated_monthly_savings or 0 for s in summaries)
    assert digest.savings_total == pytest.approx(expected)
    assert digest.savings_checks == sum(1 for s in summaries if s.estimated_monthly_savings)
    assert {c.key for c in digest.categories} >= {"operational_excellence", "brand_new_category_0"}


def test_flagged_checks_are_ordered_red_first_then_by_money_and_resources() -> None:
    rows = make_rows(
        [check(x, category="cost_optimizing") for x in "abcde"],
        [
            summary("a", "warning", flagged=99, savings=10),
            summary("b", "error", flagged=1),
            summary("c", "warning", flagged=5, savings=500),
            summary("d", "ok", flagged=0),
            summary("e", "error", flagged=40),
        ],
    )

    digest = build_digest(snapshot(rows))

    assert [r.check_id for r in digest.flagged] == ["e", "b", "c", "a"]


@pytest.mark.parametrize(
    "before, now, new, recovered",
    [
        (None, "error", True, False),
        ("ok", "error", True, False),
        ("warning", "error", True, False),
        ("error", "error", False, False),
        ("ok", "warning", True, False),
        ("not_available", "warning", True, False),
        ("error", "warning", False, False),
        ("warning", "ok", False, True),
        ("error", "ok", False, True),
        ("not_available", "ok", False, False),
        ("error", "not_available", False, False),
    ],
)
def test_what_counts_as_new_or_recovered(before: str | None, now: str, new: bool, recovered: bool) -> None:
    assert is_new_alert(before, now) is new
    assert is_recovered(before, now) is recovered


def test_change_tracking_against_the_previous_state() -> None:
    rows = make_rows(
        [check(x) for x in "abcd"],
        [summary("a", "error"), summary("b", "ok"), summary("c", "warning"), summary("d", "warning")],
    )

    digest = build_digest(snapshot(rows), state({"a": "ok", "b": "error", "c": "warning"}))

    assert [c.row.check_id for c in digest.new_alerts] == ["a", "d"]
    assert [(c.row.check_id, c.previous) for c in digest.recovered] == [("b", "error")]
    assert not digest.first


def test_first_digest_has_no_changes() -> None:
    rows = make_rows([check("a")], [summary("a", "error")])

    digest = build_digest(snapshot(rows), None)

    assert digest.first and digest.new_alerts == () and digest.recovered == ()


def test_state_round_trips_through_the_store_format() -> None:
    rows = make_rows([check("a")], [summary("a", "error")])
    saved = DigestState.of(snapshot(rows), snapshot(rows).collected_at)

    assert DigestState.from_record(saved.to_record()) == saved
    assert DigestState.from_record(None) is None
    assert DigestState.from_record({"statuses": "garbage"}) is None


def test_names_lose_control_characters() -> None:
    [row] = make_rows([check("a", "bad\x1b[31m\x00name")], [summary("a")])

    assert row.name == "bad [31m name"

"""The digest's templates over realistic and hostile data: valid JSON, within every Block Kit limit,
and the right numbers."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from bot import render
from bot.digest.layout import Limits, details_blocks, details_table, digest_blocks, digest_fallback, digest_text
from bot.digest.refresh import RefreshReport
from bot.digest.shaping import build_digest, make_rows
from bot.domain import FlaggedResource, TrustedAdvisorResult
from tests.digest.factories import (
    HOSTILE_NAMES,
    NOW,
    all_texts,
    assert_valid_message,
    check,
    generated,
    rows_of,
    snapshot,
    state,
    summary,
)

PARIS = ZoneInfo("Europe/Paris")


def blocks_by_id(blocks: list[dict]) -> dict[str, dict]:
    return {b["block_id"]: b for b in blocks if "block_id" in b}


def field_number(blocks: list[dict], marker: str) -> int:
    [text] = [f["text"] for f in blocks_by_id(blocks)["digest_counts"]["fields"] if f["text"].startswith(marker)]
    return int(re.search(r"\*([\d,]+)\*", text).group(1).replace(",", ""))


@pytest.mark.parametrize("count", [0, 1, 7, 60, 300, 2000])
@pytest.mark.parametrize("hostile", [False, True])
def test_any_number_of_checks_renders_valid_blocks_with_the_right_counts(count: int, hostile: bool) -> None:
    rows = rows_of(count, hostile=hostile)
    previous = state({r.check_id: "ok" for r in rows[::2]})
    digest = build_digest(snapshot(rows), previous)

    blocks = digest_blocks(digest, zone=PARIS)

    assert_valid_message(blocks)
    if count:
        for marker, status in [
            (":red_circle:", "error"),
            (":large_yellow_circle:", "warning"),
            (":large_green_circle:", "ok"),
            (":white_circle:", "not_available"),
        ]:
            assert field_number(blocks, marker) == sum(1 for r in rows if r.status == status)
        savings = blocks_by_id(blocks)["digest_savings"]["text"]["text"]
        if digest.savings_checks:
            assert f"${digest.savings_total:,.2f}" in savings
        else:
            assert "No estimated savings" in savings
    else:
        assert "digest_empty" in blocks_by_id(blocks)


def test_zero_checks_says_so() -> None:
    blocks = digest_blocks(build_digest(snapshot(())), zone=PARIS)

    assert_valid_message(blocks)
    assert "no checks" in blocks_by_id(blocks)["digest_empty"]["text"]["text"]
    assert [b["block_id"] for b in blocks if b.get("block_id", "").startswith("digest_top_")] == []


def test_every_hostile_name_is_escaped_and_kept_on_one_line() -> None:
    checks = [check(f"h{i}", name, "security") for i, name in enumerate(HOSTILE_NAMES)]
    summaries = [summary(f"h{i}", "error", flagged=1) for i in range(len(HOSTILE_NAMES))]
    rows = make_rows(checks, summaries)
    digest = build_digest(snapshot(rows, account='<@U1> & "acct"'), state({}))

    blocks = digest_blocks(digest, zone=PARIS)

    assert_valid_message(blocks)
    texts = "\n".join(all_texts(blocks))
    assert "&lt;script&gt;" in texts and "&amp;" in texts
    assert "🚀🔥👩‍👩‍👧‍👦" in texts and "名前" in texts
    assert "\x1b" not in texts and "\x00" not in texts
    for block in blocks:
        if block.get("block_id", "").startswith("digest_top_") and block["block_id"][11:].isdigit():
            # marker + name on the first line, details on the second: a name never adds lines
            assert block["text"]["text"].count("\n") == 1


def test_huge_numbers_are_formatted_not_broken() -> None:
    rows = make_rows(
        [check("a", category="cost_optimizing"), check("b", category="cost_optimizing")],
        [
            summary("a", "error", flagged=10**15, processed=10**18, savings=1e15),
            summary("b", "warning", flagged=2**62, processed=2**63, savings=123456789.987),
        ],
    )
    digest = build_digest(snapshot(rows))

    blocks = digest_blocks(digest, zone=PARIS)

    assert_valid_message(blocks)
    # doubles keep ~16 digits: a quadrillion-dollar total is shown to the dollar, never broken
    assert f"${1e15 + 123456789.987:,.2f}" in blocks_by_id(blocks)["digest_savings"]["text"]["text"]
    assert "1,000,000,000,000,000 of 1,000,000,000,000,000,000 resources" in json.dumps(blocks)


def test_long_lists_are_cut_with_and_n_more() -> None:
    checks, summaries = generated(2000, hostile=True)
    # Trusted Advisor may add categories: 25 of them cannot all be fields of one section.
    checks = [replace(c, category=f"category_{i % 25}") for i, c in enumerate(checks)]
    rows = make_rows(checks, summaries)
    digest = build_digest(snapshot(rows), state({r.check_id: "ok" for r in rows}))
    assert len(digest.new_alerts) > 100

    blocks = digest_blocks(digest, zone=PARIS)

    by_id = blocks_by_id(blocks)
    shown_new = by_id["digest_new"]["text"]["text"].count("\n") - 1  # title, lines, "…and N more"
    assert f"…and {len(digest.new_alerts) - shown_new:,} more" in by_id["digest_new"]["text"]["text"]
    assert "more flagged checks" in by_id["digest_top_more"]["elements"][0]["text"]
    fields = by_id["digest_categories"]["fields"]
    assert len(fields) == 10 and "more categories" in fields[-1]["text"]
    shown_categories = len(fields) - 1
    assert f"…and {len(digest.categories) - shown_categories} more" in fields[-1]["text"]


def test_lists_shrink_until_slack_accepts_them() -> None:
    # Names of 3,000 ampersands escape to 15,000 characters: only truncation and cutting keep it valid.
    checks = [check(f"a{i}", "&" * 3000 + str(i), "x" * 500 + str(i)) for i in range(80)]
    rows = make_rows(checks, [summary(f"a{i}", "error", flagged=1) for i in range(80)])
    digest = build_digest(snapshot(rows), state({}))

    blocks = digest_blocks(digest, zone=PARIS, limits=Limits(new=80, recovered=80, top=45, categories=10))

    assert_valid_message(blocks)
    assert "more" in blocks_by_id(blocks)["digest_new"]["text"]["text"]


def test_new_since_last_and_recovered_show_the_changes() -> None:
    rows = make_rows(
        [check("a", "Root MFA"), check("b", "Open ports"), check("c", "Old snapshots")],
        [summary("a", "error"), summary("b", "ok"), summary("c", "warning")],
    )
    digest = build_digest(snapshot(rows), state({"a": "ok", "b": "error", "c": "warning"}, NOW - timedelta(days=1)))

    by_id = blocks_by_id(digest_blocks(digest, zone=PARIS))

    new = by_id["digest_new"]["text"]["text"]
    assert "Root MFA" in new and "Old snapshots" not in new and "Sun 2 Mar" in new
    recovered = by_id["digest_recovered"]["text"]["text"]
    assert "Open ports" in recovered and "was red" in recovered


def test_first_digest_and_quiet_digest_wording() -> None:
    rows = make_rows([check("a")], [summary("a", "ok")])

    first = blocks_by_id(digest_blocks(build_digest(snapshot(rows)), zone=PARIS))
    quiet = blocks_by_id(digest_blocks(build_digest(snapshot(rows), state({"a": "ok"})), zone=PARIS))

    assert "first digest" in first["digest_new"]["text"]["text"]
    assert "Nothing turned red or yellow" in quiet["digest_new"]["text"]["text"]
    assert "digest_recovered" not in quiet


def test_header_shows_account_and_date_in_the_zone() -> None:
    blocks = digest_blocks(build_digest(snapshot(rows_of(5))), zone=PARIS)

    meta = blocks_by_id(blocks)["digest_meta"]["elements"][0]["text"]
    assert "123456789012" in meta and "Mon 3 Mar 2025, 09:00 CET" in meta


def test_buttons_carry_the_check_and_refresh() -> None:
    rows = make_rows([check("abc", "Open ports")], [summary("abc", "error", flagged=2)])
    blocks = digest_blocks(build_digest(snapshot(rows)), zone=PARIS)

    by_id = blocks_by_id(blocks)
    assert by_id["digest_top_1"]["accessory"] == {
        "type": "button",
        "action_id": "digest_details",
        "value": "abc",
        "text": {"type": "plain_text", "text": "Details"},
    }
    assert [e["action_id"] for e in by_id["digest_actions"]["elements"]] == ["digest_refresh", "digest_console"]


def test_refresh_follow_up_says_how_it_went() -> None:
    digest = build_digest(snapshot(rows_of(10)))

    blocks = digest_blocks(digest, zone=PARIS, refresh=RefreshReport(succeeded=12, abandoned=1, unfinished=2))

    text = blocks_by_id(blocks)["digest_refresh"]["text"]["text"]
    assert "12 checks refreshed" in text and "1 failed" in text and "2 still running" in text


def test_text_form_reads_well_and_has_the_numbers() -> None:
    rows = rows_of(120, hostile=True)
    digest = build_digest(snapshot(rows))

    text = digest_text(digest, zone=PARIS)

    assert text.startswith("Trusted Advisor digest · account 123456789012 · Mon 3 Mar 2025, 09:00 CET")
    assert f"{digest.counts['error']}  action recommended" in text
    assert f"${digest.savings_total:,.2f}" in text
    assert "Operational excellence" in text and "Brand new category 0" in text
    assert "\x1b" not in text
    assert max(len(line) for line in text.splitlines()) < 200


def test_fallback_text_has_the_counts() -> None:
    rows = make_rows([check("a"), check("b")], [summary("a", "error"), summary("b", "ok")])

    assert digest_fallback(build_digest(snapshot(rows))) == "Trusted Advisor digest: 1 red, 0 yellow, 1 green."


def test_render_of_2000_checks_is_fast() -> None:
    rows = rows_of(2000, hostile=True)
    previous = state({r.check_id: "ok" for r in rows})

    started = time.perf_counter()
    digest_blocks(build_digest(snapshot(rows), previous), zone=PARIS)
    assert time.perf_counter() - started < 1.0


# Details of one check -----------------------------------------------------------------------------


def _result(count: int, columns: int = 4, *, hostile: bool = False) -> TrustedAdvisorResult:
    resources = []
    for i in range(count):
        value = HOSTILE_NAMES[i % len(HOSTILE_NAMES)][:40] if hostile else f"resource-{i}"
        metadata = tuple([f"us-east-{i % 2 + 1}", value, None, "=cmd|' /C calc'!A0"][:columns])
        resources.append(
            FlaggedResource(
                resource_id=f"r{i}",
                status="error" if i % 3 else "warning",
                region="us-east-1",
                is_suppressed=i % 25 == 24,
                metadata=metadata,
            )
        )
    return TrustedAdvisorResult(check_id="x", status="error", timestamp="", flagged_resources=tuple(resources))


@pytest.mark.parametrize("count", [0, 1, 10, 500])
@pytest.mark.parametrize("hostile", [False, True])
def test_details_table_is_valid_and_says_what_it_left_out(count: int, hostile: bool) -> None:
    ta_check = check("x", "Open <ports> & more", "security", ("Region", "Group `name`", "Empty", "Formula"))
    [row] = make_rows([ta_check], [summary("x", "error", flagged=count)])
    table = details_table(ta_check, row, _result(count, hostile=hostile))

    blocks, shown = details_blocks(table)

    assert_valid_message(blocks)
    assert table.total == count - count // 25
    if count:
        code = blocks_by_id(blocks)["digest_top"]["text"]["text"]
        assert code.startswith("```") and code.endswith("```") and code.count("```") == 2
        assert "Region" in code and "Empty" not in code  # a column empty in every row is left out
    if shown < table.total:
        assert "CSV" in blocks_by_id(blocks)["digest_details_notes"]["elements"][0]["text"]


def test_details_csv_has_every_row_and_defuses_formulas() -> None:
    ta_check = check("x", "Open ports", "security", ("Region", "Group", "Empty", "Formula"))
    [row] = make_rows([ta_check], [summary("x", "error")])
    table = details_table(ta_check, row, _result(60))

    lines = table.csv.strip().splitlines()

    assert lines[0] == "Status,Region,Resource ID,Region,Group,Empty,Formula"
    assert len(lines) == 1 + table.total
    assert all(",'=cmd" in line for line in lines[1:])


def test_details_without_metadata_columns_shows_region_and_resource() -> None:
    ta_check = check("x", "MFA on Root Account", "security", ())
    [row] = make_rows([ta_check], [summary("x", "error")])
    table = details_table(ta_check, row, _result(3, columns=0))

    assert table.header.split() == ["Region", "Resource", "ID"]


def test_every_digest_message_macro_renders() -> None:
    rows = make_rows([check("a")], [summary("a", "error")])
    digest = build_digest(snapshot(rows))

    assert render.text("digest_fallback", d=digest)
    assert "Usage" in render.text("digest_usage")
    assert "`0 9 * *`" in render.text("digest_cron_fields", cron="0 9 * *", count=4)
    assert "&lt;" in render.text("digest_bad_zone", zone="<x>")


@pytest.mark.parametrize("suppressed_all", [False, True])
def test_details_with_nothing_flagged_hides_no_columns_and_needs_no_csv(suppressed_all: bool) -> None:
    ta_check = check("x", "MFA on Root Account", "security", ("Region", "Account"))
    [row] = make_rows([ta_check], [summary("x", "error")])
    resources = tuple(
        FlaggedResource(resource_id="r", status="error", region="us-east-1", is_suppressed=True, metadata=("a", "b"))
        for _ in range(3 if suppressed_all else 0)
    )
    table = details_table(ta_check, row, TrustedAdvisorResult("x", "error", "", resources))

    blocks, _ = details_blocks(table)

    assert table.total == 0 and table.hidden_columns == 0
    notes = json.dumps(blocks)
    assert "more column" not in notes and "CSV" not in notes
    assert "No flagged resources" in notes

"""Trusted Advisor: realistic checks, summaries with gaps, flagged resources, refresh rules, scale."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import botocore.exceptions
import pytest

from bot.sandbox import SandboxServer
from bot.sandbox.trusted_advisor import CATEGORIES

LOW_UTILIZATION_EC2 = "Qch7DwouX1"
AUTO_REFRESHED = "c1dfprch01"
NO_SUMMARY = "0t121N1Ty3"


def error_of(call: Any, **params: Any) -> dict[str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(**params)
    return caught.value.response["Error"]


def test_built_in_checks_are_realistic(client: Any) -> None:
    checks = client.describe_trusted_advisor_checks(language="en")["checks"]
    names = {c["name"] for c in checks}

    assert len(checks) >= 40
    assert {c["category"] for c in checks} == set(CATEGORIES)
    assert len({c["id"] for c in checks}) == len(checks)
    assert {
        "Low Utilization Amazon EC2 Instances",
        "Security Groups - Specific Ports Unrestricted",
        "MFA on Root Account",
        "Amazon S3 Bucket Permissions",
        "Amazon EBS Snapshots",
    } <= names
    assert all(c["description"] and isinstance(c["metadata"], list) for c in checks)


def test_summaries_have_gaps_and_every_status(client: Any) -> None:
    checks = client.describe_trusted_advisor_checks(language="en")["checks"]
    summaries = client.describe_trusted_advisor_check_summaries(checkIds=[c["id"] for c in checks])["summaries"]
    by_id = {s["checkId"]: s for s in summaries}
    category = {c["id"]: c["category"] for c in checks}

    assert NO_SUMMARY not in by_id and len(summaries) < len(checks)
    assert Counter(s["status"] for s in summaries).keys() == {"ok", "warning", "error", "not_available"}
    for summary in summaries:
        assert summary["timestamp"].endswith("Z")
        assert set(summary["resourcesSummary"]) == {
            "resourcesProcessed",
            "resourcesFlagged",
            "resourcesIgnored",
            "resourcesSuppressed",
        }
        cost = summary["categorySpecificSummary"].get("costOptimizing")
        assert (cost is not None) == (category[summary["checkId"]] == "cost_optimizing")
    assert by_id[LOW_UTILIZATION_EC2]["categorySpecificSummary"]["costOptimizing"]["estimatedMonthlySavings"] > 0


def test_results_match_their_columns_and_summaries(client: Any) -> None:
    checks = client.describe_trusted_advisor_checks(language="en")["checks"]
    for check in checks:
        result = client.describe_trusted_advisor_check_result(checkId=check["id"], language="en")["result"]
        flagged = result["flaggedResources"]
        assert all(len(r["metadata"]) == len(check["metadata"]) for r in flagged), check["name"]
        summary = result["resourcesSummary"]
        assert summary["resourcesFlagged"] + summary["resourcesSuppressed"] == len(flagged)
        assert summary["resourcesProcessed"] >= len(flagged)
        if result["status"] in ("ok", "not_available"):
            assert flagged == []


def test_results_are_deterministic(server: SandboxServer, client: Any) -> None:
    first = client.describe_trusted_advisor_check_result(checkId="HCP4007jGY")["result"]
    other = SandboxServer(reply_delay_seconds=None)
    again = other.trusted_advisor.result("HCP4007jGY")["result"]
    assert first["flaggedResources"] == again["flaggedResources"]


def test_unknown_check_ids(client: Any) -> None:
    for call, params in (
        (client.describe_trusted_advisor_check_summaries, {"checkIds": [LOW_UTILIZATION_EC2, "eW7HH0l7J9"]}),
        (client.describe_trusted_advisor_check_result, {"checkId": "eW7HH0l7J9"}),
        (client.refresh_trusted_advisor_check, {"checkId": "eW7HH0l7J9"}),
    ):
        error = error_of(call, **params)
        assert error["Code"] == "InvalidParameterValueException"
        assert "eW7HH0l7J9" in error["Message"]


def test_refresh_goes_enqueued_processing_success(server: SandboxServer, client: Any) -> None:
    before = client.describe_trusted_advisor_check_result(checkId=LOW_UTILIZATION_EC2)["result"]["timestamp"]
    [idle] = client.describe_trusted_advisor_check_refresh_statuses(checkIds=[LOW_UTILIZATION_EC2])["statuses"]

    started = client.refresh_trusted_advisor_check(checkId=LOW_UTILIZATION_EC2)["status"]
    server.advance_clock(1.5)
    [midway] = client.describe_trusted_advisor_check_refresh_statuses(checkIds=[LOW_UTILIZATION_EC2])["statuses"]
    server.advance_clock(5)
    [done] = client.describe_trusted_advisor_check_refresh_statuses(checkIds=[LOW_UTILIZATION_EC2])["statuses"]
    again = client.refresh_trusted_advisor_check(checkId=LOW_UTILIZATION_EC2)["status"]
    after = client.describe_trusted_advisor_check_result(checkId=LOW_UTILIZATION_EC2)["result"]["timestamp"]

    assert (idle["status"], idle["millisUntilNextRefreshable"]) == ("none", 0)
    assert (started["status"], started["millisUntilNextRefreshable"]) == ("enqueued", 300_000)
    assert midway["status"] == "processing"
    assert done["status"] == "success" and 290_000 < done["millisUntilNextRefreshable"] < 300_000
    assert again["status"] == "success"  # too soon: no new refresh, just where it stands
    assert after > before

    server.advance_clock(300)
    assert client.refresh_trusted_advisor_check(checkId=LOW_UTILIZATION_EC2)["status"]["status"] == "enqueued"


def test_auto_refreshed_checks_refuse_manual_refresh(client: Any) -> None:
    refresh = error_of(client.refresh_trusted_advisor_check, checkId=AUTO_REFRESHED)
    statuses = error_of(client.describe_trusted_advisor_check_refresh_statuses, checkIds=[AUTO_REFRESHED])
    assert refresh["Code"] == statuses["Code"] == "InvalidParameterValueException"


def test_language_is_checked(client: Any) -> None:
    assert client.describe_trusted_advisor_checks(language="pt_BR")["checks"]
    assert error_of(client.describe_trusted_advisor_checks, language="xx")["Code"] == "InvalidParameterValueException"


@pytest.mark.parametrize("count", [10, 100, 500, 2000])
def test_many_checks_for_benchmarks(count: int, server: SandboxServer, client: Any) -> None:
    server.set_trusted_advisor_check_count(count)
    checks = client.describe_trusted_advisor_checks(language="en")["checks"]
    # CPU time (the sandbox serves in this process): the suite's other workers share the cores.
    started = time.process_time()
    summaries = client.describe_trusted_advisor_check_summaries(checkIds=[c["id"] for c in checks])["summaries"]
    elapsed = time.process_time() - started

    assert len(checks) == count and len({c["id"] for c in checks}) == count
    assert len({c["name"] for c in checks}) == count
    assert {c["category"] for c in checks} == set(CATEGORIES)
    assert 0.8 * count <= len(summaries) <= count
    assert elapsed < 3.0


def test_back_to_the_built_in_set(server: SandboxServer) -> None:
    built_in = len(server.trusted_advisor.checks)
    server.set_trusted_advisor_check_count(500)
    server.set_trusted_advisor_check_count(None)
    assert len(server.trusted_advisor.checks) == built_in


def test_a_check_can_turn_red_and_recover(server: SandboxServer, client: Any) -> None:
    server.set_trusted_advisor_check_status("HCP4007jGY", "error")
    red = client.describe_trusted_advisor_check_summaries(checkIds=["HCP4007jGY"])["summaries"][0]
    server.set_trusted_advisor_check_status("HCP4007jGY", "ok")
    green = client.describe_trusted_advisor_check_result(checkId="HCP4007jGY")["result"]

    assert red["status"] == "error" and red["hasFlaggedResources"]
    assert green["status"] == "ok" and green["flaggedResources"] == []

"""Cases and communications through real boto3: IDs, statuses, filters, paging, validation."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.exceptions
import pytest

from bot.sandbox import SandboxServer
from bot.sandbox.times import format_millis
from tests.sandbox.helpers import EC2, open_case

CASE_ID = re.compile(r"^case-\d{12}-muen-\d{4}-[0-9a-f]{16}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def error_code(call: Any, **params: Any) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(**params)
    return caught.value.response["Error"]["Code"]


def test_create_case_and_describe_it(client: Any) -> None:
    case_id = open_case(client, ccEmailAddresses=["ops@example.com"])

    [case] = client.describe_cases(caseIdList=[case_id])["cases"]

    assert CASE_ID.match(case_id)
    assert re.match(r"^\d{10}$", case["displayId"])
    assert TIME.match(case["timeCreated"])
    assert case["status"] == "opened"
    assert (case["serviceCode"], case["categoryCode"], case["severityCode"]) == (EC2, "instance-issue", "high")
    assert case["submittedBy"] == "sandbox-user@example.com"
    assert case["ccEmailAddresses"] == ["ops@example.com"]
    assert case["language"] == "en"
    [first] = case["recentCommunications"]["communications"]
    assert first["body"] == "Our instance stopped answering on port 443."
    assert first["timeCreated"] == case["timeCreated"]
    assert "nextToken" not in case["recentCommunications"]


def test_display_ids_are_unique_and_increasing(client: Any) -> None:
    ids = [open_case(client, subject=f"case {i}") for i in range(5)]
    cases = client.describe_cases(caseIdList=ids)["cases"]
    by_id = {c["caseId"]: int(c["displayId"]) for c in cases}
    display = [by_id[case_id] for case_id in ids]
    assert display == sorted(display) and len(set(display)) == 5


def test_describe_by_display_id(client: Any) -> None:
    case_id = open_case(client)
    display_id = client.describe_cases(caseIdList=[case_id])["cases"][0]["displayId"]
    [case] = client.describe_cases(displayId=display_id)["cases"]
    assert case["caseId"] == case_id


def test_unknown_case_is_case_id_not_found(client: Any) -> None:
    known = open_case(client)
    unknown = "case-123456789012-muen-2026-0000000000000000"
    assert error_code(client.describe_cases, caseIdList=[known, unknown]) == "CaseIdNotFound"
    assert error_code(client.describe_cases, displayId="9999999999") == "CaseIdNotFound"
    assert error_code(client.describe_communications, caseId=unknown) == "CaseIdNotFound"
    assert error_code(client.add_communication_to_case, caseId=unknown, communicationBody="hi") == "CaseIdNotFound"
    assert error_code(client.resolve_case, caseId=unknown) == "CaseIdNotFound"


def test_resolve_then_reply_reopens(client: Any, server: SandboxServer) -> None:
    case_id = open_case(client)

    resolved = client.resolve_case(caseId=case_id)
    assert (resolved["initialCaseStatus"], resolved["finalCaseStatus"]) == ("opened", "resolved")
    assert client.describe_cases(caseIdList=[case_id])["cases"] == []  # resolved ones are left out by default
    assert client.describe_cases(caseIdList=[case_id], includeResolvedCases=True)["cases"][0]["status"] == "resolved"

    assert client.add_communication_to_case(caseId=case_id, communicationBody="Still broken")["result"] is True
    assert server.cases[case_id].status == "reopened"


def test_customer_reply_completes_pending_customer_action(client: Any, server: SandboxServer) -> None:
    case_id = open_case(client)
    reply = server.add_aws_reply(case_id, "Could you send the logs?")
    assert reply["submittedBy"] == "Amazon Web Services"
    assert server.cases[case_id].status == "pending-customer-action"

    client.add_communication_to_case(caseId=case_id, communicationBody="Logs attached", ccEmailAddresses=["a@b.io"])

    case = client.describe_cases(caseIdList=[case_id])["cases"][0]
    assert case["status"] == "customer-action-completed"
    assert "a@b.io" in case["ccEmailAddresses"]


def test_aws_reply_can_set_any_status(client: Any, server: SandboxServer) -> None:
    case_id = open_case(client)
    server.add_aws_reply(case_id, "Looking into it", status="work-in-progress")
    assert server.cases[case_id].status == "work-in-progress"
    with pytest.raises(Exception, match="Unknown case status"):
        server.add_aws_reply(case_id, "?", status="bogus")


def test_list_newest_first_and_only_open_by_default(client: Any) -> None:
    ids = [open_case(client, subject=f"case {i}") for i in range(4)]
    client.resolve_case(caseId=ids[1])

    open_cases = client.describe_cases(includeCommunications=False)["cases"]
    everything = client.describe_cases(includeResolvedCases=True, includeCommunications=False)["cases"]

    assert [c["caseId"] for c in open_cases] == [ids[3], ids[2], ids[0]]
    assert [c["caseId"] for c in everything] == list(reversed(ids))
    assert all("recentCommunications" not in c for c in everything)


def test_cases_page_with_max_results_and_next_token(client: Any) -> None:
    ids = [open_case(client, subject=f"case {i}") for i in range(23)]

    first = client.describe_cases(maxResults=10, includeCommunications=False)
    pages = list(
        client.get_paginator("describe_cases").paginate(includeCommunications=False, PaginationConfig={"PageSize": 10})
    )

    assert len(first["cases"]) == 10 and first["nextToken"]
    assert [len(p["cases"]) for p in pages] == [10, 10, 3]
    assert "nextToken" not in pages[-1]
    assert [c["caseId"] for p in pages for c in p["cases"]] == list(reversed(ids))


def test_paging_stays_right_when_cases_arrive_in_between(client: Any) -> None:
    ids = [open_case(client, subject=f"case {i}") for i in range(12)]
    first = client.describe_cases(maxResults=10, includeCommunications=False)
    open_case(client, subject="newcomer")
    second = client.describe_cases(maxResults=10, nextToken=first["nextToken"], includeCommunications=False)
    assert [c["caseId"] for c in second["cases"]] == [ids[1], ids[0]]


def test_after_and_before_time_filter_cases(client: Any, server: SandboxServer) -> None:
    old = open_case(client, subject="old")
    server.advance_clock(3600)
    new = open_case(client, subject="new")
    boundary = (server.clock.now() - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")

    after = client.describe_cases(afterTime=boundary)["cases"]
    before = client.describe_cases(beforeTime=boundary)["cases"]

    assert [c["caseId"] for c in after] == [new]
    assert [c["caseId"] for c in before] == [old]


def test_invalid_time_is_refused(client: Any) -> None:
    assert error_code(client.describe_cases, afterTime="yesterday") == "InvalidParameterValueException"


def test_recent_communications_are_the_five_newest_with_a_token_for_the_rest(
    client: Any, server: SandboxServer
) -> None:
    case_id = open_case(client)
    for i in range(7):
        client.add_communication_to_case(caseId=case_id, communicationBody=f"update {i}")

    recent = client.describe_cases(caseIdList=[case_id])["cases"][0]["recentCommunications"]
    rest = client.describe_communications(caseId=case_id, nextToken=recent["nextToken"])

    assert [c["body"] for c in recent["communications"]] == [f"update {i}" for i in (6, 5, 4, 3, 2)]
    assert [c["body"] for c in rest["communications"]] == [
        "update 1",
        "update 0",
        server.cases[case_id].communications[0].body,
    ]


def test_communications_newest_first_paged(client: Any) -> None:
    case_id = open_case(client)
    for i in range(24):
        client.add_communication_to_case(caseId=case_id, communicationBody=f"update {i}")

    pages = list(
        client.get_paginator("describe_communications").paginate(caseId=case_id, PaginationConfig={"PageSize": 10})
    )
    bodies = [c["body"] for p in pages for c in p["communications"]]
    times = [c["timeCreated"] for p in pages for c in p["communications"]]

    assert [len(p["communications"]) for p in pages] == [10, 10, 5]
    assert bodies[:2] == ["update 23", "update 22"] and len(bodies) == 25
    assert times == sorted(times, reverse=True) and len(set(times)) == 25


def test_communications_after_time(client: Any, server: SandboxServer) -> None:
    case_id = open_case(client)
    server.advance_clock(60)
    mark = format_millis(server.clock.now())  # a time as the API writes them
    server.add_aws_reply(case_id, "answer")
    client.add_communication_to_case(caseId=case_id, communicationBody="thanks")

    newer = client.describe_communications(caseId=case_id, afterTime=mark)["communications"]

    assert [c["body"] for c in newer] == ["thanks", "answer"]


def test_times_strictly_increase_within_a_millisecond(client: Any, server: SandboxServer, monkeypatch: Any) -> None:
    frozen = datetime(2026, 11, 23, 6, 10, 0, 123456, tzinfo=UTC)
    monkeypatch.setattr(server.clock, "now", lambda: frozen)
    case_id = open_case(client)
    client.add_communication_to_case(caseId=case_id, communicationBody="one")
    server.add_aws_reply(case_id, "two")

    times = [c["timeCreated"] for c in client.describe_communications(caseId=case_id)["communications"]]

    assert times == ["2026-11-23T06:10:00.125Z", "2026-11-23T06:10:00.124Z", "2026-11-23T06:10:00.123Z"]


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"serviceCode": "no-such-service"}, "InvalidParameterValueException"),
        ({"categoryCode": "billing-question"}, "InvalidParameterValueException"),
        ({"severityCode": "apocalyptic"}, "InvalidParameterValueException"),
        ({"issueType": "feature-request"}, "InvalidParameterValueException"),
        ({"language": "fr"}, "InvalidParameterValueException"),
        ({"ccEmailAddresses": [f"p{i}@example.com" for i in range(11)]}, "ValidationException"),
        ({"ccEmailAddresses": ["not-an-email"]}, "InvalidParameterValueException"),
        ({"communicationBody": "x" * 8001}, "ValidationException"),
        ({"communicationBody": "   "}, "ValidationException"),
        ({"subject": "s" * 256}, "ValidationException"),
        ({"subject": " "}, "ValidationException"),
    ],
)
def test_create_case_validation(client: Any, server: SandboxServer, overrides: dict[str, Any], code: str) -> None:
    assert error_code(open_case, client=client, **overrides) == code
    assert server.cases == {}


def test_create_case_limits_at_the_edge_are_fine(client: Any) -> None:
    case_id = open_case(
        client, communicationBody="x" * 8000, subject="s" * 255, ccEmailAddresses=[f"p{i}@e.io" for i in range(10)]
    )
    assert case_id


def test_customer_service_case_with_defaults(client: Any) -> None:
    case_id = client.create_case(subject="Invoice question", communicationBody="Why two invoices?")["caseId"]
    case = client.describe_cases(caseIdList=[case_id])["cases"][0]
    assert (case["serviceCode"], case["severityCode"], case["language"]) == ("general-info", "low", "en")


def test_describe_cases_limits(client: Any) -> None:
    assert error_code(client.describe_cases, caseIdList=[f"case-{i}" for i in range(101)]) == "ValidationException"
    assert error_code(client.describe_cases, maxResults=101) == "ValidationException"
    assert error_code(client.describe_communications, caseId="case-x", maxResults=500) == "ValidationException"
    # botocore itself refuses values under the modeled minimum before sending anything
    with pytest.raises(botocore.exceptions.ParamValidationError):
        client.describe_cases(maxResults=5)
    assert error_code(client.describe_cases, nextToken="garbage!") == "InvalidParameterValueException"


def test_add_communication_validation(client: Any) -> None:
    case_id = open_case(client)
    assert error_code(client.add_communication_to_case, caseId=case_id, communicationBody="x" * 8001) == (
        "ValidationException"
    )
    too_many = [f"p{i}@example.com" for i in range(11)]
    assert error_code(
        client.add_communication_to_case, caseId=case_id, communicationBody="hi", ccEmailAddresses=too_many
    ) == ("ValidationException")
    assert error_code(client.add_communication_to_case, communicationBody="hi") == "ValidationException"

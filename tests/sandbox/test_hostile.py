"""The sandbox's hostile answers: free text carries the chosen prefix, identifiers and times stay usable."""

from __future__ import annotations

from typing import Any

from bot.sandbox import SandboxServer
from tests.sandbox.helpers import open_case

PREFIX = "<!channel> "


def test_free_text_is_prefixed_and_identifiers_are_not(client: Any, server: SandboxServer) -> None:
    case_id = open_case(client)
    server.add_aws_reply(case_id, "Answer", attachments=[("log.txt", b"x")])
    server.set_hostile_prefix(PREFIX)

    [case] = client.describe_cases(caseIdList=[case_id])["cases"]
    communication = case["recentCommunications"]["communications"][0]
    severity = client.describe_severity_levels(language="en")["severityLevels"][0]

    assert case["caseId"] == case_id and not case["timeCreated"].startswith(PREFIX)
    for member in ("displayId", "subject", "status", "severityCode", "serviceCode", "categoryCode", "submittedBy"):
        assert case[member].startswith(PREFIX), member
    assert communication["body"] == PREFIX + "Answer"
    assert communication["attachmentSet"][0]["fileName"] == PREFIX + "log.txt"
    assert not communication["attachmentSet"][0]["attachmentId"].startswith(PREFIX)
    assert severity["name"].startswith(PREFIX) and not severity["code"].startswith(PREFIX)

    server.set_hostile_prefix(None)
    assert client.describe_cases(caseIdList=[case_id])["cases"][0]["subject"] == "Instance unreachable"


def test_added_services_and_edited_cases(client: Any, server: SandboxServer) -> None:
    code = "s" * 200
    server.add_service(code, "Long", [("c" * 160, "Category")])
    case_id = open_case(client, serviceCode=code, categoryCode="c" * 160)
    server.edit_case(case_id, subject="")

    [case] = client.describe_cases(caseIdList=[case_id])["cases"]
    assert (case["serviceCode"], case["subject"]) == (code, "")
    assert any(s["code"] == code for s in client.describe_services(language="en")["services"])

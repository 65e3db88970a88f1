"""Attachment sets: limits, expiry, one-time use, and retrieval through DescribeAttachment."""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import pytest

from bot.sandbox import SandboxServer
from bot.sandbox.catalog import ATTACHMENT_MAX_BYTES, SET_RATE_WINDOW_SECONDS
from tests.sandbox.helpers import open_case


def error_code(call: Any, **params: Any) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(**params)
    return caught.value.response["Error"]["Code"]


def files(*names: str) -> list[dict[str, Any]]:
    return [{"fileName": name, "data": f"contents of {name}".encode()} for name in names]


def test_attachments_travel_with_the_case_and_come_back(client: Any) -> None:
    binary = bytes(range(256)) * 10
    added = client.add_attachments_to_set(attachments=[{"fileName": "dump.bin", "data": binary}, *files("a.log")])
    assert added["attachmentSetId"] and added["expiryTime"].endswith("Z")

    case_id = open_case(client, attachmentSetId=added["attachmentSetId"])
    [communication] = client.describe_communications(caseId=case_id)["communications"]
    refs = {a["fileName"]: a["attachmentId"] for a in communication["attachmentSet"]}

    assert set(refs) == {"dump.bin", "a.log"}
    assert client.describe_attachment(attachmentId=refs["dump.bin"])["attachment"] == {
        "fileName": "dump.bin",
        "data": binary,
    }


def test_attachments_on_a_reply(client: Any) -> None:
    case_id = open_case(client)
    set_id = client.add_attachments_to_set(attachments=files("trace.txt"))["attachmentSetId"]
    client.add_communication_to_case(caseId=case_id, communicationBody="trace", attachmentSetId=set_id)
    newest = client.describe_communications(caseId=case_id)["communications"][0]
    assert [a["fileName"] for a in newest["attachmentSet"]] == ["trace.txt"]


def test_aws_reply_with_attachments(client: Any, server: SandboxServer) -> None:
    case_id = open_case(client)
    reply = server.add_aws_reply(case_id, "See the attached runbook", attachments=[("runbook.md", b"# steps")])
    [ref] = reply["attachmentSet"]
    assert client.describe_attachment(attachmentId=ref["attachmentId"])["attachment"]["data"] == b"# steps"


def test_adding_to_an_existing_set(client: Any) -> None:
    set_id = client.add_attachments_to_set(attachments=files("one"))["attachmentSetId"]
    again = client.add_attachments_to_set(attachmentSetId=set_id, attachments=files("two", "three"))
    assert again["attachmentSetId"] == set_id
    assert error_code(client.add_attachments_to_set, attachmentSetId=set_id, attachments=files("four")) == (
        "AttachmentSetSizeLimitExceeded"
    )


def test_more_than_three_attachments(client: Any) -> None:
    # The API reference: AttachmentSetSizeLimitExceeded is "three attachments and 5 MB per attachment".
    too_many = files("a", "b", "c", "d")
    assert error_code(client.add_attachments_to_set, attachments=too_many) == "AttachmentSetSizeLimitExceeded"


def test_too_many_attachment_sets_in_a_short_time(client: Any, server: SandboxServer) -> None:
    # The API reference: AttachmentLimitExceeded is "the number of attachment sets created in a short
    # period of time"; the set being added to is not a new one.
    server.set_attachment_set_rate(2)
    first = client.add_attachments_to_set(attachments=files("one"))["attachmentSetId"]
    client.add_attachments_to_set(attachments=files("two"))
    assert error_code(client.add_attachments_to_set, attachments=files("three")) == "AttachmentLimitExceeded"
    assert client.add_attachments_to_set(attachmentSetId=first, attachments=files("more"))["attachmentSetId"] == first

    server.advance_clock(SET_RATE_WINDOW_SECONDS)
    assert client.add_attachments_to_set(attachments=files("later"))["attachmentSetId"]


def test_attachment_over_five_megabytes(client: Any) -> None:
    exactly = [{"fileName": "ok.bin", "data": b"x" * ATTACHMENT_MAX_BYTES}]
    assert client.add_attachments_to_set(attachments=exactly)["attachmentSetId"]
    too_big = [{"fileName": "big.bin", "data": b"x" * (ATTACHMENT_MAX_BYTES + 1)}]
    assert error_code(client.add_attachments_to_set, attachments=too_big) == "AttachmentSetSizeLimitExceeded"


def test_sets_expire_after_an_hour(client: Any, server: SandboxServer) -> None:
    set_id = client.add_attachments_to_set(attachments=files("late.txt"))["attachmentSetId"]
    server.advance_clock(3599)
    fresh = client.add_attachments_to_set(attachments=files("fresh.txt"))["attachmentSetId"]
    server.advance_clock(2)

    assert error_code(open_case, client=client, attachmentSetId=set_id) == "AttachmentSetExpired"
    assert error_code(client.add_attachments_to_set, attachmentSetId=set_id, attachments=files("x")) == (
        "AttachmentSetExpired"
    )
    assert open_case(client, attachmentSetId=fresh)


def test_expire_a_set_on_demand(client: Any, server: SandboxServer) -> None:
    case_id = open_case(client)
    set_id = client.add_attachments_to_set(attachments=files("a"))["attachmentSetId"]
    server.expire_attachment_set(set_id)
    assert error_code(
        client.add_communication_to_case, caseId=case_id, communicationBody="hi", attachmentSetId=set_id
    ) == ("AttachmentSetExpired")


def test_a_set_is_used_once(client: Any) -> None:
    set_id = client.add_attachments_to_set(attachments=files("a"))["attachmentSetId"]
    open_case(client, attachmentSetId=set_id)
    assert error_code(open_case, client=client, attachmentSetId=set_id) == "AttachmentSetIdNotFound"


def test_unknown_set_and_attachment(client: Any, server: SandboxServer) -> None:
    case_id = open_case(client)
    assert error_code(open_case, client=client, attachmentSetId="as-nope") == "AttachmentSetIdNotFound"
    assert error_code(
        client.add_communication_to_case, caseId=case_id, communicationBody="hi", attachmentSetId="as-nope"
    ) == ("AttachmentSetIdNotFound")
    assert error_code(client.add_attachments_to_set, attachmentSetId="as-nope", attachments=files("a")) == (
        "AttachmentSetIdNotFound"
    )
    assert error_code(client.describe_attachment, attachmentId="attachment-nope") == "AttachmentIdNotFound"
    assert len(server.cases) == 1  # the failed CreateCase calls opened nothing


def test_empty_attachment_list_is_refused(client: Any) -> None:
    assert error_code(client.add_attachments_to_set, attachments=[]) == "ValidationException"

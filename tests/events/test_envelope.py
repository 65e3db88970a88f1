"""Reading SQS bodies: a Support Case Update becomes a CaseEvent; anything else an Ignored, never an exception."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bot.events.envelope import CaseEvent, Ignored, parse_message
from tests.events.queues import event_body

# AWS's own example, from the AWS Support user guide ("Support case created").
AWS_EXAMPLE = {
    "version": "0",
    "id": "3433df007-9285-55a3-f6d1-536944be45d7",
    "detail-type": "Support Case Update",
    "source": "aws.support",
    "account": "111122223333",
    "time": "2022-02-21T15:51:19Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {
        "case-id": "case-111122223333-muen-2022-7118885805350839",
        "display-id": "1234563851",
        "communication-id": "",
        "event-name": "CreateCase",
        "origin": "",
    },
}


def test_aws_example_parses() -> None:
    event = parse_message(json.dumps(AWS_EXAMPLE))
    assert event == CaseEvent(
        event_id="3433df007-9285-55a3-f6d1-536944be45d7",
        account="111122223333",
        region="us-east-1",
        time=datetime(2022, 2, 21, 15, 51, 19, tzinfo=UTC),
        case_id="case-111122223333-muen-2022-7118885805350839",
        display_id="1234563851",
        communication_id="",
        event_name="CreateCase",
        origin="",
    )
    assert event.key == ("case-111122223333-muen-2022-7118885805350839", "", "CreateCase")
    assert not event.from_aws


def test_a_reply_from_aws_and_its_key() -> None:
    event = parse_message(event_body(communication_id="c-9", origin="AWS").encode())
    assert isinstance(event, CaseEvent) and event.from_aws
    assert event.key == ("case-123456789012-muen-2026-0000000000000001", "c-9", "AddCommunicationToCase")


def test_missing_optional_fields_and_odd_time_still_parse() -> None:
    raw = json.loads(json.dumps(AWS_EXAMPLE))
    for name in ("communication-id", "origin", "display-id"):
        del raw["detail"][name]
    raw["time"] = "yesterday"
    event = parse_message(json.dumps(raw))
    assert isinstance(event, CaseEvent)
    assert (event.communication_id, event.origin, event.display_id, event.time) == ("", "", "", None)


def _with(path: str, value: object) -> str:
    raw = json.loads(json.dumps(AWS_EXAMPLE))
    target = raw
    *parents, last = path.split(".")
    for name in parents:
        target = target[name]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return json.dumps(raw)


@pytest.mark.parametrize(
    ("body", "reason", "foreign"),
    [
        (None, "body is not JSON", False),
        ("", "body is not JSON", False),
        ("{", "body is not JSON", False),
        ("null", "body is a JSON NoneType, not an object", False),
        ('"text"', "body is a JSON str, not an object", False),
        (_with("source", "aws.ec2"), "source 'aws.ec2' is not aws.support", True),
        (_with("source", KeyError), "source null is not aws.support", False),
        (
            _with("detail-type", "AWS API Call via CloudTrail"),
            "detail-type 'AWS API Call via CloudTrail' is not Support Case Update",
            True,
        ),
        (_with("detail", "x"), "detail is missing or not an object", False),
        (_with("account", "12"), "account '12' is not a 12-digit account ID", False),
        (_with("detail.case-id", ""), "detail.case-id '' is not a case ID", False),
        (
            _with("detail.event-name", "DeleteCase"),
            "detail.event-name 'DeleteCase' is not one of AddCommunicationToCase, CreateCase, ReopenCase, ResolveCase",
            False,
        ),
        (_with("detail.communication-id", 5), "detail.communication-id is not a string", False),
        (_with("detail.origin", "ROBOT"), "detail.origin 'ROBOT' is neither AWS nor CUSTOMER", False),
        (_with("detail.case-id", "case-" + "x" * 500), None, False),
    ],
)
def test_anything_else_is_ignored_with_a_reason(body: str | None, reason: str | None, foreign: bool) -> None:
    result = parse_message(body)
    if reason is None:  # a long but valid case ID still parses
        assert isinstance(result, CaseEvent)
        return
    assert result == Ignored(reason, foreign=foreign)


def test_a_long_value_is_quoted_short() -> None:
    result = parse_message(_with("source", "y" * 1000))
    assert isinstance(result, Ignored) and len(result.reason) < 80

"""The sandbox publishes a Support Case Update for every case change, as AWS does to EventBridge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from bot.events.envelope import CaseEvent, parse_message
from bot.sandbox import SandboxServer
from tests.events.queues import boto_session, plain_client
from tests.sandbox.helpers import open_case
from tests.sandbox.test_accounts import assume, assumed_client


@pytest.fixture
def sandbox_events(tmp_path) -> Iterator[SandboxServer]:
    server = SandboxServer(reply_delay_seconds=None, events=True, state_path=str(tmp_path / "state.json")).start()
    try:
        yield server
    finally:
        server.stop()


def drain(server: SandboxServer) -> list[CaseEvent]:
    sqs = plain_client(server.url)
    events: list[Any] = []
    while True:
        got = sqs.receive_message(QueueUrl=server.events_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages") or []
        if not messages:
            return events
        events += [parse_message(m["Body"]) for m in messages]
        sqs.delete_message_batch(
            QueueUrl=server.events_queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )


def test_a_case_life_is_published_in_order(sandbox_events: SandboxServer) -> None:
    support = boto_session().client("support", endpoint_url=sandbox_events.url)
    case_id = open_case(support)
    sandbox_events.add_aws_reply(case_id, "Hello from AWS")
    support.resolve_case(caseId=case_id)
    support.add_communication_to_case(caseId=case_id, communicationBody="It is back")

    events = drain(sandbox_events)
    assert all(isinstance(e, CaseEvent) for e in events)
    assert [(e.event_name, e.origin) for e in events] == [
        ("CreateCase", ""),
        ("AddCommunicationToCase", "AWS"),
        ("ResolveCase", ""),
        ("ReopenCase", ""),
        ("AddCommunicationToCase", "CUSTOMER"),
    ]
    assert {(e.case_id, e.account, e.region) for e in events} == {(case_id, "123456789012", "us-east-1")}
    assert events[0].display_id == sandbox_events.cases[case_id].display_id
    replies = [e.communication_id for e in events if e.event_name == "AddCommunicationToCase"]
    assert len(set(replies)) == 2 and all(replies)
    assert [e.communication_id for e in events if e.event_name != "AddCommunicationToCase"] == ["", "", ""]


def test_the_engineers_own_reply_is_published(tmp_path) -> None:
    server = SandboxServer(reply_delay_seconds=0.0, events=True).start()
    try:
        support = boto_session().client("support", endpoint_url=server.url)
        open_case(support)
        sqs = plain_client(server.url)
        got = sqs.receive_message(QueueUrl=server.events_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=5)
        names = [json.loads(m["Body"])["detail"]["event-name"] for m in got["Messages"]]
        assert names[0] == "CreateCase"
        if len(names) == 1:  # the engineer's reply may come a moment later: the long poll waits for it
            got = sqs.receive_message(QueueUrl=server.events_queue_url, WaitTimeSeconds=5)
            names += [json.loads(m["Body"])["detail"]["event-name"] for m in got["Messages"]]
        assert names == ["CreateCase", "AddCommunicationToCase"]
    finally:
        server.stop()


def test_a_restart_does_not_publish_old_changes_again(sandbox_events: SandboxServer, tmp_path) -> None:
    support = boto_session().client("support", endpoint_url=sandbox_events.url)
    case_id = open_case(support)
    sandbox_events.stop()

    again = SandboxServer(reply_delay_seconds=None, events=True, state_path=str(tmp_path / "state.json")).start()
    try:
        assert drain(again) == []
        again.add_aws_reply(case_id, "Still here")
        assert [(e.case_id, e.event_name) for e in drain(again)] == [(case_id, "AddCommunicationToCase")]
    finally:
        again.stop()


def test_every_accounts_changes_land_in_the_one_queue_each_naming_its_account() -> None:
    server = SandboxServer(reply_delay_seconds=None, events=True, accounts=3).start()
    try:
        own = open_case(boto_session().client("support", endpoint_url=server.url))
        member = open_case(assumed_client(server, assume(server, "200000000003")))
        server.accounts.account("sandbox-3").add_aws_reply(member, "Hello from AWS")

        events = [(e.account, e.case_id, e.event_name) for e in drain(server)]
        assert events == [
            ("123456789012", own, "CreateCase"),
            ("200000000003", member, "CreateCase"),
            ("200000000003", member, "AddCommunicationToCase"),
        ]
    finally:
        server.stop()


def test_without_events_the_sandbox_has_no_queue(sandbox: SandboxServer) -> None:
    assert sandbox.events_queue_url is None
    with pytest.raises(Exception, match="UnknownOperationException"):
        plain_client(sandbox.url).receive_message(QueueUrl=f"{sandbox.url}/123456789012/support-case-updates")

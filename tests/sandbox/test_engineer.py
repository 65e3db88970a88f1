"""The emulated AWS engineer: answers every customer communication once, after the delay."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from bot.sandbox import SandboxServer
from tests.sandbox.helpers import open_case, wait_until

DELAY = 0.2


@pytest.fixture
def quick_server() -> Iterator[SandboxServer]:
    sandbox = SandboxServer(reply_delay_seconds=DELAY).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def quick_client(quick_server: SandboxServer, boto_session: boto3.session.Session) -> Any:
    return boto_session.client("support", endpoint_url=quick_server.url)


def aws_replies(server: SandboxServer, case_id: str) -> list[str]:
    return [c.body for c in server.cases[case_id].communications if c.submitted_by == "Amazon Web Services"]


def test_new_case_is_answered_after_the_delay(quick_server: SandboxServer, quick_client: Any) -> None:
    case_id = open_case(quick_client, subject="RDS failover took 10 minutes")
    assert aws_replies(quick_server, case_id) == []  # not before the delay

    replies = wait_until(lambda: aws_replies(quick_server, case_id))

    assert len(replies) == 1
    assert "RDS failover took 10 minutes" in replies[0]
    assert quick_server.cases[case_id].status == "pending-customer-action"
    newest = quick_client.describe_communications(caseId=case_id)["communications"][0]
    assert newest["submittedBy"] == "Amazon Web Services"


def test_each_customer_reply_is_answered_once(quick_server: SandboxServer, quick_client: Any) -> None:
    case_id = open_case(quick_client, subject="Lambda cold starts")
    wait_until(lambda: aws_replies(quick_server, case_id))

    quick_client.add_communication_to_case(caseId=case_id, communicationBody="Here are the traces")
    quick_client.add_communication_to_case(caseId=case_id, communicationBody="And the config")
    assert quick_server.cases[case_id].status == "customer-action-completed"

    replies = wait_until(lambda: len(aws_replies(quick_server, case_id)) == 3 and aws_replies(quick_server, case_id))
    assert len(replies) == 3 and all("Lambda cold starts" in r for r in replies)
    assert quick_server.cases[case_id].status == "pending-customer-action"
    quick_server.engineer.set_delay(DELAY)  # re-queues nothing: every communication is answered
    assert quick_server.state.unanswered() == []


def test_resolved_cases_are_not_answered(quick_server: SandboxServer, quick_client: Any) -> None:
    case_id = open_case(quick_client)
    quick_client.resolve_case(caseId=case_id)
    wait_until(lambda: False, timeout=DELAY * 2)
    assert aws_replies(quick_server, case_id) == []


def test_silent_engineer_and_switching_him_on(server: SandboxServer, client: Any) -> None:
    case_id = open_case(client)
    wait_until(lambda: False, timeout=0.1)
    assert aws_replies(server, case_id) == []

    server.set_reply_delay(0.05)

    assert wait_until(lambda: aws_replies(server, case_id))
    assert server.reply_delay_seconds == 0.05


def test_switching_him_off_cancels_pending_answers(quick_server: SandboxServer, quick_client: Any) -> None:
    case_id = open_case(quick_client)
    quick_server.set_reply_delay(-1)
    wait_until(lambda: False, timeout=DELAY * 2)
    assert aws_replies(quick_server, case_id) == []

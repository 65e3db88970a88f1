"""Calls that create something at AWS are never resent blindly, yet never lost to a lost answer."""

from __future__ import annotations

import pytest

from bot.bootstrap import sandbox_gateway
from bot.domain import NewCase
from bot.errors import AwsError

NEW = NewCase("Disk full", "general-info", "general-guidance", "low", "The volume is full.")


@pytest.fixture
def gateway(sandbox):
    return sandbox_gateway(sandbox.url)


def test_a_case_opened_whose_answer_was_lost_is_left_to_the_caller_to_find(sandbox, gateway):
    # A subject is no identity (another form may carry the same): the gateway never guesses which
    # case was this call's; the intake finds it by the reference in its opening body (tests/cases/test_modal.py).
    gateway.create_case(NewCase("Disk full", "general-info", "general-guidance", "low", "Someone else's."))
    sandbox.inject_fault("CreateCase", "InternalServerError", after_processing=True)
    with pytest.raises(AwsError) as raised:
        gateway.create_case(NEW)
    assert raised.value.retryable
    assert sandbox.calls["CreateCase"] == 2
    assert len([c for c in gateway.list_cases() if c.subject == "Disk full"]) == 2


def test_a_case_aws_did_not_open_is_reported_and_not_resent(sandbox, gateway):
    sandbox.inject_fault("CreateCase", "InternalServerError")
    with pytest.raises(AwsError) as raised:
        gateway.create_case(NEW)
    assert raised.value.key == "aws_internal_error"
    assert sandbox.calls["CreateCase"] == 1
    assert not gateway.list_cases()


def test_a_communication_whose_answer_was_lost_counts_as_sent(sandbox, gateway):
    case_id = gateway.create_case(NEW)
    sandbox.inject_fault("AddCommunicationToCase", "ServiceUnavailable", after_processing=True)
    gateway.add_communication(case_id, "Ana via Slack: any news?")
    assert sandbox.calls["AddCommunicationToCase"] == 1
    bodies = [c.body for c in gateway.communications(case_id)]
    assert bodies.count("Ana via Slack: any news?") == 1


def test_a_throttled_communication_is_sent_again_because_aws_did_nothing(sandbox, gateway):
    case_id = gateway.create_case(NEW)
    sandbox.inject_fault("AddCommunicationToCase", "ThrottlingException", count=1)
    gateway.add_communication(case_id, "after a throttle")
    assert sandbox.calls["AddCommunicationToCase"] == 2
    assert [c.body for c in gateway.communications(case_id)].count("after a throttle") == 1


def test_a_failed_communication_is_reported_once_tried(sandbox, gateway):
    case_id = gateway.create_case(NEW)
    sandbox.inject_fault("AddCommunicationToCase", "InternalServerError")
    with pytest.raises(AwsError):
        gateway.add_communication(case_id, "lost?")
    assert sandbox.calls["AddCommunicationToCase"] == 1

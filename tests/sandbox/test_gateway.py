"""The project's gateway (bot.aws.SupportGateway) against the sandbox: every method, every error."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import boto3
import botocore.retries.standard
import pytest

from bot import render
from bot.aws.gateway import ERROR_KEYS, SupportGateway
from bot.aws.session import new_session
from bot.domain import Attachment, NewCase
from bot.errors import AttachmentProblem, AwsError, CaseNotFound
from bot.sandbox import SandboxServer
from bot.sandbox.catalog import ATTACHMENT_MAX_BYTES
from tests.sandbox.helpers import EC2, attempts

UNKNOWN_CASE = "case-123456789012-muen-2026-0000000000000000"


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore sleeps up to seconds between attempts; these tests count attempts, not sleeps."""
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


def new_case(subject: str = "Disk full on build host", **overrides: Any) -> NewCase:
    params: dict[str, Any] = {
        "subject": subject,
        "service_code": EC2,
        "category_code": "instance-issue",
        "severity_code": "urgent",
        "body": "The root volume filled up overnight.",
    }
    params.update(overrides)
    return NewCase(**params)


def test_case_lifecycle(gateway: SupportGateway, server: SandboxServer) -> None:
    case_id = gateway.create_case(new_case(cc_email_addresses=("oncall@example.com",)))
    server.add_aws_reply(case_id, "Please attach the output of df -h")
    gateway.add_communication(case_id, "Attached, see below", cc_email_addresses=["lead@example.com"])

    by_id = gateway.get_case(case_id)
    by_display = gateway.get_case(by_id.display_id)

    assert by_display.case_id == case_id
    assert by_id.status == "customer-action-completed"
    assert by_id.severity_code == "urgent"
    assert by_id.cc_email_addresses == ("oncall@example.com", "lead@example.com")
    assert [c.body for c in by_id.recent_communications][0] == "Attached, see below"
    assert by_id.more_communications is False
    assert gateway.resolve_case(case_id) == ("customer-action-completed", "resolved")
    assert gateway.get_case(case_id).is_resolved


def test_more_communications_flag_and_oldest_first_history(gateway: SupportGateway, server: SandboxServer) -> None:
    case_id = gateway.create_case(new_case())
    for i in range(6):
        server.add_aws_reply(case_id, f"aws {i}")

    case = gateway.get_case(case_id)
    history = gateway.communications(case_id)
    last_two = gateway.communications(case_id, limit=2)

    assert len(case.recent_communications) == 5 and case.more_communications
    assert [c.body for c in history][1:] == [f"aws {i}" for i in range(6)]
    assert [c.body for c in last_two] == ["aws 4", "aws 5"]
    assert all(c.created_at is not None for c in history)


def test_communications_after_time(gateway: SupportGateway, server: SandboxServer) -> None:
    case_id = gateway.create_case(new_case())
    first = gateway.communications(case_id)[-1]
    server.advance_clock(1)
    server.add_aws_reply(case_id, "new answer")

    newer = gateway.communications(case_id, after_time=first.time_created)

    # afterTime is inclusive: the boundary item comes again, so a poller dedupes by key.
    assert [c.body for c in newer] == [first.body, "new answer"]
    assert len({c.key for c in newer}) == 2


def test_list_cases_pages_through_everything(gateway: SupportGateway, server: SandboxServer) -> None:
    ids = [gateway.create_case(new_case(f"case {i}")) for i in range(105)]
    gateway.resolve_case(ids[0])
    server.reset_calls()

    listed = gateway.list_cases()
    limited = gateway.list_cases(include_resolved=True, limit=3)

    assert [c.case_id for c in listed] == list(reversed(ids[1:]))
    assert server.calls["DescribeCases"] == 3  # 100 + 4, then 3 for the limited listing
    assert [c.case_id for c in limited] == list(reversed(ids[-3:]))


def test_describe_cases_skips_unknown_ids(gateway: SupportGateway) -> None:
    known = [gateway.create_case(new_case(f"case {i}")) for i in range(3)]
    found = gateway.describe_cases([known[0], UNKNOWN_CASE, known[1], known[2]])
    assert sorted(c.case_id for c in found) == sorted(known)


def test_attachments_round_trip(gateway: SupportGateway) -> None:
    set_id = gateway.add_attachments([Attachment("a.log", b"alpha"), Attachment("b.png", b"\x89PNG")])
    set_id = gateway.add_attachments([Attachment("c.txt", b"gamma")], attachment_set_id=set_id)
    case_id = gateway.create_case(new_case(attachment_set_id=set_id))

    [communication] = gateway.communications(case_id)
    fetched = [gateway.attachment(ref.attachment_id) for ref in communication.attachments]

    assert fetched == [Attachment("a.log", b"alpha"), Attachment("b.png", b"\x89PNG"), Attachment("c.txt", b"gamma")]


def test_options_for_the_create_case_modal(gateway: SupportGateway, server: SandboxServer) -> None:
    services = gateway.services()
    severities = gateway.severity_levels()
    gateway.services()

    assert len(services) > 100
    assert all(s.categories for s in services)
    assert [s.code for s in severities] == ["low", "normal", "high", "urgent", "critical"]
    assert server.calls["DescribeServices"] == 1  # the gateway caches the catalog


def test_trusted_advisor(gateway: SupportGateway, server: SandboxServer) -> None:
    checks = gateway.trusted_advisor_checks()
    summaries = gateway.trusted_advisor_summaries(c.check_id for c in checks)
    result = gateway.trusted_advisor_result("Qch7DwouX1")
    refresh = gateway.refresh_trusted_advisor_check("Qch7DwouX1")
    server.advance_clock(10)
    [status] = gateway.trusted_advisor_refresh_statuses(["Qch7DwouX1"])

    assert len(checks) >= 40
    assert 0 < len(summaries) < len(checks)  # a few checks have no summary at all
    assert {s.status for s in summaries} == {"ok", "warning", "error", "not_available"}
    cost = next(s for s in summaries if s.check_id == "Qch7DwouX1")
    assert cost.estimated_monthly_savings and cost.estimated_monthly_savings > 0
    assert result.status == "warning" and result.flagged_resources
    assert len(result.flagged_resources[0].metadata) == len(
        next(c for c in checks if c.check_id == "Qch7DwouX1").metadata
    )
    assert (refresh.status, refresh.millis_until_next_refreshable) == ("enqueued", 300_000)
    assert status.status == "success" and 0 < status.millis_until_next_refreshable < 300_000
    assert gateway.trusted_advisor_summaries([]) == [] and gateway.trusted_advisor_refresh_statuses([]) == []


# Errors -----------------------------------------------------------------------------------------


def test_case_not_found_by_id_and_display_id(gateway: SupportGateway) -> None:
    for ref in (UNKNOWN_CASE, "9999999999"):
        with pytest.raises(CaseNotFound) as caught:
            gateway.get_case(ref)
        assert caught.value.key == "case_not_found" and caught.value.code == "CaseIdNotFound"
    with pytest.raises(CaseNotFound):
        gateway.add_communication(UNKNOWN_CASE, "hello?")
    with pytest.raises(CaseNotFound):
        gateway.resolve_case(UNKNOWN_CASE)


def _expire(gateway: SupportGateway, server: SandboxServer) -> None:
    set_id = gateway.add_attachments([Attachment("a", b"a")])
    server.expire_attachment_set(set_id)
    gateway.create_case(new_case(attachment_set_id=set_id))


def _too_many_sets(gateway: SupportGateway, server: SandboxServer) -> None:
    server.set_attachment_set_rate(1)
    gateway.add_attachments([Attachment("a", b"a")])
    gateway.add_attachments([Attachment("b", b"b")])


REAL_FAILURES = {
    "AttachmentLimitExceeded": _too_many_sets,
    "AttachmentSetSizeLimitExceeded": lambda g, s: g.add_attachments(
        [Attachment("big.bin", b"x" * (ATTACHMENT_MAX_BYTES + 1))]
    ),
    "AttachmentSetSizeLimitExceeded(count)": lambda g, s: g.add_attachments(
        [Attachment(f"{i}.txt", b"x") for i in range(4)]
    ),
    "AttachmentSetExpired": _expire,
    "AttachmentSetIdNotFound": lambda g, s: g.add_communication(
        g.create_case(new_case()), "files", attachment_set_id="as-unknown"
    ),
    "AttachmentIdNotFound": lambda g, s: g.attachment("attachment-unknown"),
    "InvalidParameterValueException": lambda g, s: g.create_case(new_case(service_code="no-such-service")),
    "ValidationException": lambda g, s: g.create_case(new_case(body="x" * 8001)),
}


@pytest.mark.parametrize("code", sorted(REAL_FAILURES))
def test_real_failures_become_domain_errors(code: str, gateway: SupportGateway, server: SandboxServer) -> None:
    with pytest.raises(AwsError) as caught:
        REAL_FAILURES[code](gateway, server)
    code = code.partition("(")[0]
    assert caught.value.code == code
    assert caught.value.key == ERROR_KEYS[code][0]
    assert caught.value.retryable == ERROR_KEYS[code][1]


def test_attachment_errors_say_what_the_reference_says(gateway: SupportGateway, server: SandboxServer) -> None:
    with pytest.raises(AttachmentProblem) as too_many_files:
        REAL_FAILURES["AttachmentSetSizeLimitExceeded(count)"](gateway, server)
    with pytest.raises(AttachmentProblem) as too_many_sets:
        _too_many_sets(gateway, server)

    assert "3 files" in render.error_text(too_many_files.value)
    assert not too_many_files.value.retryable
    assert too_many_sets.value.retryable  # "in a short period of time": later it works
    assert "3 files" not in render.error_text(too_many_sets.value)
    assert "minutes" in render.error_text(too_many_sets.value)


FAULT_CODES = [
    "CaseIdNotFound",
    "CaseCreationLimitExceeded",
    "AttachmentLimitExceeded",
    "AttachmentSetExpired",
    "AttachmentSetIdNotFound",
    "AttachmentSetSizeLimitExceeded",
    "AttachmentIdNotFound",
    "DescribeAttachmentLimitExceeded",
    "ThrottlingException",
    "SubscriptionRequiredException",
    "InternalServerError",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "ValidationError",
    "InvalidParameterValue",
]


@pytest.mark.parametrize("code", FAULT_CODES)
def test_every_documented_error_maps_to_its_key(
    code: str, gateway_no_retry: SupportGateway, server: SandboxServer
) -> None:
    case_id = gateway_no_retry.create_case(new_case())
    server.inject_fault("*", code, count=attempts(gateway_no_retry))

    with pytest.raises(AwsError) as caught:
        gateway_no_retry.get_case(case_id)

    key, retryable = ERROR_KEYS[code]
    error = caught.value
    assert (error.key, error.code, error.retryable) == (key, code, retryable)
    if code == "CaseIdNotFound":
        assert isinstance(error, CaseNotFound)
    elif key.startswith("attachment"):
        assert isinstance(error, AttachmentProblem)
    assert error.params["aws_message"]


def test_injected_create_case_limit(gateway: SupportGateway, server: SandboxServer) -> None:
    server.inject_fault(operation="CreateCase", code="CaseCreationLimitExceeded", count=1)
    with pytest.raises(AwsError) as caught:
        gateway.create_case(new_case())
    assert caught.value.key == "case_creation_limit"
    assert gateway.create_case(new_case())  # the fault was used up
    assert len(server.cases) == 1


def test_describe_attachment_limit_is_retryable(gateway_no_retry: SupportGateway, server: SandboxServer) -> None:
    server.inject_fault(
        "DescribeAttachment", "DescribeAttachmentLimitExceeded", count=attempts(gateway_no_retry), message="Slow down"
    )
    with pytest.raises(AwsError) as caught:
        gateway_no_retry.attachment("attachment-any")
    assert caught.value.retryable and caught.value.params["aws_message"] == "Slow down"


def test_persistent_server_errors_exhaust_retries(gateway: SupportGateway, server: SandboxServer) -> None:
    server.inject_fault("DescribeSeverityLevels", "InternalServerError", count=10)
    with pytest.raises(AwsError) as caught:
        gateway.severity_levels()
    assert caught.value.key == "aws_internal_error"
    assert server.calls["DescribeSeverityLevels"] == attempts(gateway)


def test_botocore_retries_throttling(gateway: SupportGateway, server: SandboxServer) -> None:
    server.inject_fault("DescribeSeverityLevels", "ThrottlingException", count=2)
    started = time.monotonic()

    levels = gateway.severity_levels()

    assert len(levels) == 5
    assert server.calls["DescribeSeverityLevels"] == 3
    assert time.monotonic() - started < 5


def test_missing_credentials(server: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"):
        empty = tmp_path / name.lower()
        empty.write_text("")
        monkeypatch.setenv(name, str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    gateway = SupportGateway(endpoint_url=server.url, session=new_session(region_name="us-east-1"))

    with pytest.raises(AwsError) as caught:
        gateway.severity_levels()
    assert caught.value.key == "no_credentials"
    assert server.calls.total() == 0


def test_unreachable_endpoint(boto_session: boto3.session.Session) -> None:
    stopped = SandboxServer(reply_delay_seconds=None).start()
    url = stopped.url
    stopped.stop()
    gateway = SupportGateway(endpoint_url=url, session=boto_session, max_attempts=1)
    with pytest.raises(AwsError) as caught:
        gateway.severity_levels()
    assert caught.value.key == "aws_unreachable"

"""Every documented AWS Support error reaches the person as a short message that says what to do."""

from __future__ import annotations

import pytest

from tests.cases.helpers import open_case_at_aws

# (code, words the person must see). Retryable codes are injected more times than botocore retries.
ERRORS = [
    ("CaseIdNotFound", "no case"),
    ("CaseCreationLimitExceeded", "too many cases"),
    ("AttachmentLimitExceeded", "too many attachment uploads"),
    ("AttachmentSetExpired", "expired"),
    ("AttachmentSetIdNotFound", "attach the files again"),
    ("AttachmentSetSizeLimitExceeded", "at most 3 files of at most 5 MB"),
    ("AttachmentIdNotFound", "no longer exists"),
    ("DescribeAttachmentLimitExceeded", "limiting attachment downloads"),
    ("ThrottlingException", "throttling"),
    ("SubscriptionRequiredException", "support plan"),
    ("InternalServerError", "internal error"),
]


@pytest.mark.parametrize(("code", "words"), ERRORS)
def test_aws_error_on_a_command_becomes_a_clear_ephemeral_answer(bot, code, words):
    case = open_case_at_aws(bot)
    bot.sandbox.inject_fault(operation="DescribeCases", code=code, count=10)
    bot.command(f"show {case.display_id}")
    answer = bot.wait_for_response()
    assert answer["response_type"] == "ephemeral"
    assert words in answer["text"], answer["text"]
    assert "Traceback" not in answer["text"]


def test_throttling_is_retried_by_the_gateway_before_anyone_sees_it(bot):
    case = open_case_at_aws(bot)
    bot.sandbox.inject_fault(operation="DescribeCases", code="ThrottlingException", count=2)
    bot.sandbox.reset_calls()
    bot.command(f"show {case.display_id}")
    assert case.subject in str(bot.wait_for_response())
    assert bot.sandbox.calls["DescribeCases"] == 3

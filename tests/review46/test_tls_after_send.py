"""Review 46, F1: a TLS failure while the answer is read (after the request left the bot) ends the doubt.

urllib3 turns an ssl.SSLError raised by getresponse() (the request already written) into its SSLError,
botocore into botocore.exceptions.SSLError, a ConnectionError, not an HTTPClientError. bot/aws/errors.py
catches it only in the last branch ("the bot's own AWS setup"), key "aws_setup_error", which
bot/cases/unclear.REFUSED_KEYS counts as "AWS did nothing": the doubt is cleared, and a reply that reached
AWS is told ":x: your reply was *not* sent" (a resend puts it there twice; for CreateCase: a second case).
Review 45's note on aws_errors says TLS and proxies count as no answer, but only HTTPClientError was added."""

from __future__ import annotations

import ssl

import botocore.exceptions
import pytest

from bot.aws.errors import aws_errors
from bot.cases.unclear import REFUSED_KEYS
from bot.errors import AwsError
from tests.cases.helpers import fast_retries, link_case, open_case_at_aws, sent_texts


def tls_broken_mid_answer() -> Exception:
    return botocore.exceptions.SSLError(
        endpoint_url="https://support.us-east-1.amazonaws.com/",
        error=ssl.SSLError(1, "[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC] decryption failed or bad record mac"),
    )


def test_a_tls_failure_is_not_counted_as_aws_refusing_the_call():
    with pytest.raises(AwsError) as raised, aws_errors():
        raise tls_broken_mid_answer()
    assert raised.value.key not in REFUSED_KEYS, f"{raised.value.key!r}: a TLS failure ends the doubt"


class AnswerLostToTls:
    """The Support client whose call reaches AWS, and whose answer is then lost to a TLS failure."""

    def __init__(self, client, method: str) -> None:
        self._client, self._method = client, method

    def __getattr__(self, name):
        real = getattr(self._client, name)
        if name != self._method:
            return real

        def call(**params):
            real(**params)
            raise tls_broken_mid_answer()

        return call


def test_a_reply_that_reached_aws_before_tls_broke_is_not_told_not_sent(bot):
    bot.slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    case = open_case_at_aws(bot)
    card = link_case(bot, case)
    fast_retries(bot, deadline_seconds=2.0)
    gateway = bot.services.cases.replies.gateway
    real = gateway._single
    gateway._single = AnswerLostToTls(real, "add_communication_to_case")
    try:
        bot.user_message("C1", "reached AWS, answer lost", thread_ts=card["ts"])
        bot.services.work.wait_idle(timeout=20)
    finally:
        gateway._single = real
    assert sent_texts(bot, case.case_id) == ["reached AWS, answer lost"]
    told = [c.params["text"] for c in bot.slack.calls("chat.postMessage") if "your reply" in c.params.get("text", "")]
    assert not any("*not* sent" in t for t in told), f"told {told} about a reply that is on the case"

"""Review 44, F3: bot/cases/unclear.py keeps the doubt only for the keys aws_internal_error and
aws_unreachable, which bot/aws/errors.py gives to three named 5xx codes and to no answer at all. A bare
502/503/504 -- a load balancer, an API gateway or a proxy answering for AWS, HTML or empty body -- is
parsed by botocore as Code "502"/"503"/"504", which ERROR_KEYS maps to ("aws_error", not retryable).
after_failure then ends the doubt, the gateway's own look-after-a-failure (add_communication) is skipped
as the error is not retryable, and the person is told "*not* sent" / "*not* opened" though AWS did it (a
504 Gateway Timeout is the very answer of a request whose backend is still, or already, at work)."""

from __future__ import annotations

import botocore.exceptions
import botocore.parsers
import botocore.session

from tests.cases.helpers import fast_retries, sent_texts
from tests.cases.helpers import linked_for_ana as linked
from tests.cases.test_modal import open_modal, values


def bare_5xx(operation: str, status: int = 504) -> botocore.exceptions.ClientError:
    """What botocore raises for a 5xx whose body is not AWS's JSON (as from a front end)."""
    model = botocore.session.get_session().get_service_model("support")
    parser = botocore.parsers.create_parser(model.metadata["protocol"])
    shape = model.operation_model(operation).output_shape
    parsed = parser.parse({"status_code": status, "headers": {}, "body": b"<html>Gateway Timeout</html>"}, shape)
    return botocore.exceptions.ClientError(parsed, operation)


class AnswerLostAfterTheWork:
    """The Support client, with one call of `method` done at AWS and answered by a bare 5xx."""

    def __init__(self, client, method: str, operation: str) -> None:
        self._client, self._method, self._operation, self.used = client, method, operation, False

    def __getattr__(self, name):
        real = getattr(self._client, name)
        if name != self._method or self.used:
            return real

        def call(**params):
            self.used = True
            real(**params)  # AWS did it ...
            raise bare_5xx(self._operation)  # ... and the answer on the way back is the front end's 504

        return call


def test_a_reply_answered_by_a_bare_504_after_aws_took_it_is_not_said_not_sent(bot):
    case, card = linked(bot)
    fast_retries(bot, deadline_seconds=2.0)
    gateway = bot.services.cases.replies.gateway
    real = gateway._single
    gateway._single = AnswerLostAfterTheWork(real, "add_communication_to_case", "AddCommunicationToCase")
    try:
        delivery = bot.user_message("C1", "taken, then 504", thread_ts=card["ts"])
        bot.services.work.wait_idle(timeout=20)
    finally:
        gateway._single = real
    at_aws = sent_texts(bot, case.case_id)
    assert at_aws == ["taken, then 504"]
    told = [c.params["text"] for c in bot.slack.calls("chat.postMessage") if "your reply" in c.params.get("text", "")]
    confirmed = bot.slack.calls("reactions.add", lambda c: c.params["timestamp"] == delivery.event["ts"])
    assert confirmed or not any("*not* sent" in t for t in told), f"told {told} while AWS has {at_aws}"


def test_a_form_answered_by_a_bare_504_after_aws_opened_the_case_is_not_said_not_opened(bot):
    fast_retries(bot, deadline_seconds=2.0)
    gateway = bot.services.cases.intake.gateway
    real = gateway._single
    gateway._single = AnswerLostAfterTheWork(real, "create_case", "CreateCase")
    try:
        view = open_modal(bot)
        bot.requests.view_submission(view, values=values(subject="Opened, then 504"))
        bot.services.work.wait_idle(timeout=20)
    finally:
        gateway._single = real
    opened = [c.subject for c in bot.services.gateway.list_cases()]
    assert opened == ["Opened, then 504"]
    told = [
        c.params.get("text", "")
        for c in bot.slack.calls("chat.postEphemeral") + bot.slack.calls("chat.postMessage")
        if "*not* opened" in c.params.get("text", "")
    ]
    assert not told, f"told {told} while AWS opened the case"

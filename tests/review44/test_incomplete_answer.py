"""Review 44, F6: CreateCase answered 200 without a caseId raises aws_incomplete_answer, retryable --
"AWS most likely opened it" (bot/aws/gateway.py). after_failure reads any key but aws_internal_error and
aws_unreachable as "AWS refused the call" and ends the doubt. The next try looks for the case at once (no
minute for a listing that lags the create), and when it cannot look (DescribeCases failing until the
deadline) the person is told "Your case was *not* opened" about a case AWS opened."""

from __future__ import annotations

from bot.errors import AwsError
from tests.cases.helpers import fast_retries
from tests.cases.test_modal import open_modal, values


class OpenedWithoutItsId:
    def __init__(self, client) -> None:
        self._client, self.used = client, False

    def __getattr__(self, name):
        real = getattr(self._client, name)
        if name != "create_case" or self.used:
            return real

        def call(**params):
            self.used = True
            answer = dict(real(**params))  # AWS opened it ...
            answer.pop("caseId", None)  # ... and its answer came without the case's ID
            return answer

        return call


def test_a_form_whose_create_answer_lacked_the_case_id_is_not_said_not_opened(bot):
    fast_retries(bot, deadline_seconds=1.0)
    gateway = bot.services.cases.intake.gateway
    real = gateway._single
    gateway._single = OpenedWithoutItsId(real)
    real_list = gateway.list_cases

    def list_cases(*args, **kwargs):
        if gateway._single.used:
            raise AwsError("aws_internal_error", code="InternalServerError", retryable=True)  # AWS struggling
        return real_list(*args, **kwargs)

    gateway.list_cases = list_cases
    try:
        view = open_modal(bot)
        bot.requests.view_submission(view, values=values(subject="Opened, answer incomplete"))
        bot.services.work.wait_idle(timeout=20)
    finally:
        gateway._single = real
        del gateway.list_cases
    opened = [c.subject for c in bot.services.gateway.list_cases()]
    assert opened == ["Opened, answer incomplete"]
    told = [
        c.params.get("text", "")
        for c in bot.slack.calls("chat.postEphemeral") + bot.slack.calls("chat.postMessage")
        if "*not* opened" in c.params.get("text", "")
    ]
    assert not told, f"told {told} while AWS opened the case"

"""The Create form's submission answers before asking AWS anything (adversarial review of 96d8cbf).

A view_submission must be answered within Slack's 3 s; asking AWS Support first (an AssumeRole, a
DescribeSeverityLevels, each with botocore's timeouts and retries) can take far longer for an account
out of reach. Whether the fields are the chosen account's, or that account could not be reached
when the form was drawn, the form itself says."""

from __future__ import annotations

from tests.accounts.test_create_across_accounts import (
    account_state,
    open_form,
    pick,
    sandbox_of,
    with_account,
)
from tests.cases.test_modal import values


def test_fields_of_another_account_are_refused_without_asking_aws(accounts_bot):
    view = open_form(accounts_bot, "C1")  # main's fields
    asked = sandbox_of(accounts_bot, "stage").calls["DescribeSeverityLevels"]
    state = {**with_account("main"), **account_state("stage")}  # stage picked, the redraw not arrived
    answer = accounts_bot.requests.view_submission(view, values=state)
    assert answer.body["response_action"] == "errors" and list(answer.body["errors"]) == ["account"]
    assert "stage" in answer.body["errors"]["account"]
    assert sandbox_of(accounts_bot, "stage").calls["DescribeSeverityLevels"] == asked


def test_an_account_out_of_reach_when_drawn_is_refused_without_asking_aws(accounts_bot_factory, accounts_sandbox):
    accounts_sandbox.accounts.deny_assume_role("sandbox-3")  # stage
    bot = accounts_bot_factory()
    redrawn = pick(bot, open_form(bot, "C1"), "stage")
    assumed = dict(accounts_sandbox.accounts.calls)
    state = {**values(), **account_state("stage")}
    for name in ("service", "severity"):
        state[f"{name}:main"] = state.pop(name)
    answer = bot.requests.view_submission(redrawn, values=state)
    assert answer.body["response_action"] == "errors" and list(answer.body["errors"]) == ["account"]
    error = answer.body["errors"]["account"]
    assert "stage" in error and "assuming its role was denied" in error
    assert dict(accounts_sandbox.accounts.calls) == assumed

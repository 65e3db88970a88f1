"""`python -m bot check`: says exactly what is wrong with Slack, AWS or the support plan."""

from __future__ import annotations

import io

from bot.aws.session import new_session
from bot.bootstrap import sandbox_gateway
from bot.check import run_checks
from bot.config import load_settings


def settings_for(fake_slack, **overrides):
    env = {
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_SIGNING_SECRET": "test-secret",
        "SLACK_API_URL": fake_slack.api_url,
        **overrides,
    }
    return load_settings(env, require_slack=False)


def test_all_good_exits_zero(fake_slack, sandbox):
    out = io.StringIO()
    assert run_checks(settings_for(fake_slack), out=out, gateway=sandbox_gateway(sandbox.url)) == 0
    text = out.getvalue()
    assert "All checks passed" in text
    assert "FAIL" not in text
    assert "xoxb-test-token" not in text


def test_rejected_token_is_named(fake_slack, sandbox):
    fake_slack.fail("auth.test", error="invalid_auth", count=1)
    out = io.StringIO()
    assert run_checks(settings_for(fake_slack), out=out, gateway=sandbox_gateway(sandbox.url)) == 1
    assert "invalid_auth" in out.getvalue()
    assert "Reinstall the app" in out.getvalue()


def test_missing_support_plan_is_named(fake_slack, sandbox):
    sandbox.inject_fault(operation="DescribeSeverityLevels", code="SubscriptionRequiredException", count=1)
    out = io.StringIO()
    assert run_checks(settings_for(fake_slack), out=out, gateway=sandbox_gateway(sandbox.url)) == 1
    assert "support plan" in out.getvalue()


def test_missing_secret_and_app_token_is_named(fake_slack, sandbox):
    out = io.StringIO()
    settings = settings_for(fake_slack, SLACK_SIGNING_SECRET="")
    assert run_checks(settings, out=out, gateway=sandbox_gateway(sandbox.url)) == 1
    assert "SLACK_SIGNING_SECRET" in out.getvalue()


def test_aws_error_text_is_printed_as_text_not_html_escaped(fake_slack, sandbox):
    sandbox.inject_fault(
        operation="DescribeSeverityLevels",
        code="ValidationException",
        message='Value "<all>" & more failed @channel',
        count=5,
    )
    out = io.StringIO()
    assert run_checks(settings_for(fake_slack), out=out, gateway=sandbox_gateway(sandbox.url)) == 1
    text = out.getvalue()
    assert 'Value "<all>" & more failed @channel' in text, text
    assert "&lt;" not in text and "&amp;" not in text


def test_each_account_line_shows_aws_error_text_as_text() -> None:
    """With BOT_ACCOUNTS_FILE, `check` prints one line per account: AWS's words in them stay as AWS wrote them."""

    from bot.accounts.check import check_accounts
    from bot.accounts.config import Account
    from bot.accounts.directory import AccountDirectory
    from bot.accounts.sessions import AccountSessions, account_gateways
    from bot.sandbox import SandboxServer

    server = SandboxServer(reply_delay_seconds=None, accounts=2).start()
    try:
        server.accounts.account("sandbox-2").inject_fault(
            "DescribeSeverityLevels", "ValidationException", message='Value "<all>" & more failed', count=5
        )
        base = new_session(aws_access_key_id="sandbox", aws_secret_access_key="s", region_name="us-east-1")
        sessions = AccountSessions(base_session=base, sts_endpoint_url=server.url, time_fetcher=server.clock.now)
        directory = AccountDirectory(
            [
                Account(alias="sandbox", id="123456789012"),
                Account(alias="sandbox-2", id="200000000002", role_arn="arn:aws:iam::200000000002:role/AwsSupportBot"),
            ]
        )
        lines = check_accounts(directory, sessions, account_gateways(directory, sessions, endpoint_url=server.url))
    finally:
        server.stop()

    [failed] = [line for line in lines if not line.ok]
    assert 'Value "<all>" & more failed' in failed.detail, failed.detail
    assert "&lt;" not in failed.detail and "&amp;" not in failed.detail

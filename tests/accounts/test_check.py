"""`python -m bot check` with BOT_ACCOUNTS_FILE: one line per account, each saying what to fix."""

from __future__ import annotations

import io

import pytest

from bot.accounts.check import check_accounts
from bot.accounts.directory import AccountDirectory
from bot.accounts.sessions import account_gateways
from bot.check import run_checks
from bot.config import load_settings

ACCOUNTS_FILE = """
[defaults]
role_name = "AwsSupportBot"

[[accounts]]
alias = "second"
id = "200000000002"
channels = ["CPROD"]

[[accounts]]
alias = "third"
id = "200000000003"
"""


def test_one_line_per_account(sandbox3, sessions, accounts):
    sandbox3.accounts.deny_assume_role("sandbox-2")
    sandbox3.accounts.account("sandbox-3").inject_fault("DescribeSeverityLevels", "SubscriptionRequiredException")
    directory = AccountDirectory(accounts)
    lines = check_accounts(directory, sessions, account_gateways(directory, sessions, endpoint_url=sandbox3.url))
    assert [(line.name, line.ok) for line in lines] == [("sandbox", True), ("sandbox-2", False), ("sandbox-3", False)]
    own, denied, no_plan = (line.detail for line in lines)
    assert own.startswith("123456789012: the bot's own credentials, AWS Support answers; severities low")
    assert denied.startswith(
        "200000000002: account sandbox-2 (200000000002) cannot be reached: assuming its role was denied"
    )
    assert no_plan.startswith("200000000003: role assumed, but the account has no Business")


@pytest.fixture
def accounts_env(sandbox3, tmp_path, monkeypatch, fake_slack):
    """The bot's environment as an operator sets it: the file, and botocore's own endpoint variables."""
    path = tmp_path / "accounts.toml"
    path.write_text(ACCOUNTS_FILE)
    for name, value in {
        "BOT_ACCOUNTS_FILE": str(path),
        "AWS_ACCESS_KEY_ID": "sandbox",
        "AWS_SECRET_ACCESS_KEY": "sandbox",
        "AWS_ENDPOINT_URL_STS": sandbox3.url,
        "AWS_ENDPOINT_URL_SUPPORT": sandbox3.url,
        "AWS_ENDPOINT_URL_ORGANIZATIONS": sandbox3.url,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    env = {"SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": "s", "SLACK_API_URL": fake_slack.api_url}
    return load_settings(env, require_slack=False), path


def test_console_check_verifies_every_account(sandbox3, accounts_env):
    settings, _ = accounts_env
    out = io.StringIO()
    assert run_checks(settings, out=out) == 0, out.getvalue()
    text = out.getvalue()
    assert "ok   second: 200000000002: role assumed, AWS Support answers" in text
    assert "ok   third: 200000000003: role assumed, AWS Support answers" in text
    assert "All checks passed" in text


def test_console_check_names_the_unreachable_account_and_fails(sandbox3, accounts_env):
    settings, _ = accounts_env
    sandbox3.accounts.deny_assume_role("sandbox-3")
    out = io.StringIO()
    assert run_checks(settings, out=out) == 1
    text = out.getvalue()
    assert "ok   second:" in text
    assert "FAIL third: 200000000003: account third (200000000003) cannot be reached" in text


def test_console_check_lists_every_mistake_of_the_file(sandbox3, accounts_env):
    settings, path = accounts_env
    path.write_text('[[accounts]]\nalias = "Bad Alias"\nid = "12"\n')
    out = io.StringIO()
    assert run_checks(settings, out=out) == 1
    fails = [line for line in out.getvalue().splitlines() if line.startswith("FAIL accounts:")]
    assert len(fails) == 3, out.getvalue()

"""Settings and wiring of several accounts: a gateway per account, the sandbox's N accounts, file errors."""

from __future__ import annotations

import subprocess
import sys

from bot.accounts.routing import AccountGateways
from bot.bootstrap import build_services
from bot.config import load_settings
from bot.domain import NewCase
from tests.accounts.e2e import open_case_in
from tests.support.harness import bot_env


def test_one_gateway_per_account_each_acting_in_its_own(accounts_bot):
    services = accounts_bot.services
    assert list(services.gateways) == ["main", "prod", "stage"]
    assert isinstance(services.gateway, AccountGateways)
    ids = {alias: open_case_in(accounts_bot, alias).case_id for alias in services.gateways}
    assert ids["main"].startswith("case-123456789012-")
    assert ids["prod"].startswith("case-200000000002-")
    assert ids["stage"].startswith("case-200000000003-")
    # Each case lives in its own account only.
    assert ids["prod"] in accounts_bot.sandbox.accounts.account("sandbox-2").cases
    assert ids["prod"] not in accounts_bot.sandbox.cases
    # The routing gateway finds each by its ID, and names its account.
    case = services.gateway.get_case(ids["stage"])
    assert (case.account, case.account_id) == ("stage", "200000000003")


def test_without_a_file_one_default_account_as_before(bot):
    assert list(bot.services.gateways) == ["default"]
    assert bot.services.gateway is bot.services.gateways["default"]
    assert not isinstance(bot.services.gateway, AccountGateways)


def test_sandbox_accounts_serves_n_accounts_by_generated_aliases(fake_slack, accounts_sandbox, tmp_path):
    settings = load_settings(bot_env(fake_slack, tmp_path / "b.sqlite", {"BOT_SANDBOX_ACCOUNTS": "3"}))
    services = build_services(settings, aws_endpoint_url=accounts_sandbox.url)
    try:
        assert list(services.gateways) == ["sandbox", "sandbox-2", "sandbox-3"]
        new_case = NewCase("s", "amazon-elastic-compute-cloud-linux", "other", "low", "b")
        case_id = services.gateways["sandbox-3"].create_case(new_case)
        assert case_id.startswith("case-200000000003-")
        assert services.gateway.get_case(case_id).account == "sandbox-3"
    finally:
        services.close()


def test_a_bad_accounts_file_stops_serve_with_every_mistake_and_exit_2(tmp_path):
    path = tmp_path / "accounts.toml"
    path.write_text('[[accounts]]\nalias = "Bad Alias"\nid = "12"\n')
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s",
        "BOT_DB_PATH": str(tmp_path / "db.sqlite"),
        "BOT_ACCOUNTS_FILE": str(path),
        "PATH": "/usr/bin:/bin",
    }
    for command in (["serve"], ["digest", "--print"]):
        done = subprocess.run(
            [sys.executable, "-m", "bot", "--sandbox", *command], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2, done.stderr
        assert "BOT_ACCOUNTS_FILE" in done.stderr and "Bad Alias" in done.stderr
        assert "Traceback" not in done.stderr


def test_bad_sandbox_account_count_is_refused(fake_slack, tmp_path):
    import pytest

    from bot.config import ConfigError

    with pytest.raises(ConfigError, match="BOT_SANDBOX_ACCOUNTS"):
        load_settings(bot_env(fake_slack, tmp_path / "b.sqlite", {"BOT_SANDBOX_ACCOUNTS": "zero"}))

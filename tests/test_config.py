"""load_settings: the environment becomes one validated Settings, or a ConfigError that says what to fix."""

from __future__ import annotations

import dataclasses

import pytest

from bot.config import DEFAULT_SLACK_API_URL, ConfigError, load_settings

BASE = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "shh"}


def settings(**env: str):
    return load_settings({**BASE, **env})


def test_defaults() -> None:
    loaded = settings()

    assert loaded.slack_api_url == DEFAULT_SLACK_API_URL == "https://slack.com/api/"
    assert loaded.port == 3000
    assert loaded.db_path == "./data/bot.sqlite"
    assert loaded.poll_interval_seconds == 60
    assert loaded.journal_lease_seconds == 60
    assert loaded.admins == frozenset()
    assert loaded.digest_timezone == "UTC"
    assert loaded.sandbox is False
    assert loaded.socket_mode is False


@pytest.mark.parametrize("value", ["0", "0.5", "-3"])
def test_a_poll_interval_below_one_second_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="POLL_INTERVAL_SECONDS"):
        settings(POLL_INTERVAL_SECONDS=value)


@pytest.mark.parametrize("value", ["0", "abc", "nan"])
def test_a_journal_lease_below_one_second_or_not_a_number_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="BOT_JOURNAL_LEASE_SECONDS"):
        settings(BOT_JOURNAL_LEASE_SECONDS=value)


def test_a_journal_lease_is_kept() -> None:
    assert settings(BOT_JOURNAL_LEASE_SECONDS="3").journal_lease_seconds == 3.0


@pytest.mark.parametrize("value", ["abc", "1m"])
def test_a_poll_interval_that_is_not_a_number_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="POLL_INTERVAL_SECONDS"):
        settings(POLL_INTERVAL_SECONDS=value)


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_poll_interval_that_is_not_finite_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="POLL_INTERVAL_SECONDS"):
        settings(POLL_INTERVAL_SECONDS=value)


@pytest.mark.parametrize("value, expected", [("1", 1.0), ("2.5", 2.5), ("300", 300.0)])
def test_a_poll_interval_of_at_least_one_second_is_kept(value: str, expected: float) -> None:
    assert settings(POLL_INTERVAL_SECONDS=value).poll_interval_seconds == expected


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "CEST", "../../etc/passwd", "Europe/"])
def test_a_digest_timezone_that_is_not_iana_is_refused(zone: str) -> None:
    with pytest.raises(ConfigError, match="DIGEST_TIMEZONE"):
        settings(DIGEST_TIMEZONE=zone)


@pytest.mark.parametrize("zone, expected", [("Europe/Paris", "Europe/Paris"), ("  ", "UTC"), ("UTC", "UTC")])
def test_an_iana_digest_timezone_is_kept(zone: str, expected: str) -> None:
    assert settings(DIGEST_TIMEZONE=zone).digest_timezone == expected


def test_a_missing_bot_token_is_refused() -> None:
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
        load_settings({"SLACK_SIGNING_SECRET": "shh"})


def test_a_blank_bot_token_is_refused() -> None:
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
        load_settings({"SLACK_BOT_TOKEN": "  ", "SLACK_SIGNING_SECRET": "shh"})


def test_a_missing_signing_secret_is_refused_in_http_mode() -> None:
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        load_settings({"SLACK_BOT_TOKEN": "xoxb-1"})


def test_socket_mode_needs_no_signing_secret() -> None:
    loaded = load_settings({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1-A-1-abc"})

    assert loaded.socket_mode is True
    assert loaded.slack_signing_secret == ""


@pytest.mark.parametrize("app_token", ["xoxb-not-an-app-token", "abc"])
def test_socket_mode_needs_an_app_level_token(app_token: str) -> None:
    with pytest.raises(ConfigError, match="xapp-"):
        load_settings({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": app_token})


def test_slack_is_optional_when_not_required() -> None:
    loaded = load_settings({}, require_slack=False)

    assert loaded.slack_bot_token == ""


def test_admins_are_parsed_from_a_comma_separated_list() -> None:
    loaded = settings(BOT_ADMINS=" U1, U2 ,,U3,")

    assert loaded.admins == frozenset({"U1", "U2", "U3"})
    assert loaded.is_admin("U2")
    assert not loaded.is_admin("U4")
    assert not loaded.is_admin("")


@pytest.mark.parametrize(
    "value, expected",
    [
        ("http://127.0.0.1:9999/api", "http://127.0.0.1:9999/api/"),
        ("http://127.0.0.1:9999/api/", "http://127.0.0.1:9999/api/"),
        ("", DEFAULT_SLACK_API_URL),
    ],
)
def test_the_slack_api_url_always_ends_with_a_slash(value: str, expected: str) -> None:
    assert settings(SLACK_API_URL=value).slack_api_url == expected


def test_a_port_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(ConfigError, match="PORT"):
        settings(PORT="http")


def test_sandbox_comes_from_the_environment_or_the_flag() -> None:
    assert settings(BOT_SANDBOX="1").sandbox is True
    assert settings(BOT_SANDBOX="yes").sandbox is True
    assert settings(BOT_SANDBOX="0").sandbox is False
    assert settings().sandbox is False
    assert load_settings(BASE, sandbox=True).sandbox is True


def test_the_process_environment_is_read_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-env")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "from-env")
    monkeypatch.setenv("BOT_ADMINS", "UENV")

    assert load_settings().admins == frozenset({"UENV"})


def test_secrets_stay_out_of_repr_and_settings_are_frozen() -> None:
    loaded = load_settings({"SLACK_BOT_TOKEN": "xoxb-secret", "SLACK_SIGNING_SECRET": "sign-secret"})

    assert "xoxb-secret" not in repr(loaded)
    assert "sign-secret" not in repr(loaded)
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.port = 1  # type: ignore[misc]


@pytest.mark.parametrize("name", ["PORT", "POLL_INTERVAL_SECONDS", "DIGEST_TIMEZONE", "BOT_DB_PATH", "SLACK_API_URL"])
def test_an_empty_setting_means_its_default(name: str) -> None:
    defaults = settings()
    assert getattr(settings(**{name: ""}), _FIELDS[name]) == getattr(defaults, _FIELDS[name])


_FIELDS = {
    "PORT": "port",
    "POLL_INTERVAL_SECONDS": "poll_interval_seconds",
    "DIGEST_TIMEZONE": "digest_timezone",
    "BOT_DB_PATH": "db_path",
    "SLACK_API_URL": "slack_api_url",
}


@pytest.mark.parametrize("value", ["0", "-1", "65536", "70000"])
def test_a_port_outside_1_to_65535_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="PORT must be between 1 and 65535"):
        settings(PORT=value)


@pytest.mark.parametrize("value", ["1", "3000", "65535"])
def test_a_port_inside_the_range_is_kept(value: str) -> None:
    assert settings(PORT=value).port == int(value)


@pytest.mark.parametrize("value", ["LOUD", "verbose", "10"])
def test_a_log_level_that_logging_does_not_know_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"):
        settings(LOG_LEVEL=value)


@pytest.mark.parametrize("value, expected", [("debug", "DEBUG"), (" Warning ", "WARNING"), ("", "INFO")])
def test_a_log_level_is_kept_in_capitals(value: str, expected: str) -> None:
    assert settings(LOG_LEVEL=value).log_level == expected


@pytest.mark.parametrize(
    "name, value",
    [
        ("BOT_SANDBOX_REPLY_SECONDS", "soon"),
        ("BOT_SANDBOX_REPLY_SECONDS", "nan"),
        ("BOT_SANDBOX_LATENCY_SECONDS", "0.2s"),
        ("BOT_SANDBOX_LATENCY_SECONDS", "-1"),
        ("BOT_SANDBOX_LATENCY_SECONDS", "inf"),
    ],
)
def test_sandbox_seconds_that_are_not_a_usable_number_are_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"{name} must be a number of seconds"):
        settings(**{name: value})


def test_sandbox_settings_are_read_into_settings() -> None:
    loaded = settings(BOT_SANDBOX_REPLY_SECONDS="-1", BOT_SANDBOX_LATENCY_SECONDS="0.25", BOT_DB_PATH="/srv/bot/db")

    assert loaded.sandbox_reply_seconds == -1
    assert loaded.sandbox_latency_seconds == 0.25
    assert loaded.sandbox_state_path == "/srv/bot/sandbox.json"  # next to the bot's own state
    assert settings(BOT_SANDBOX_STATE="").sandbox_state_path is None  # set but empty: no file
    assert settings(BOT_SANDBOX_STATE="/tmp/s.json").sandbox_state_path == "/tmp/s.json"
    assert (settings().sandbox_reply_seconds, settings().sandbox_latency_seconds) == (30, 0)

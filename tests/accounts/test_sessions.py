"""A session per account: credentials from sts:AssumeRole through real boto3, renewed by botocore when
they near expiry, one unreachable account named and never in the others' way."""

from __future__ import annotations

import boto3
import botocore.exceptions
import pytest

from bot import render
from bot.accounts.errors import AccountUnreachable
from bot.accounts.sessions import ROLE_SESSION_NAME, AccountSessions, account_gateways
from bot.aws.session import new_session
from bot.domain import NewCase
from bot.errors import AwsError
from tests.accounts.conftest import member

SECOND = member("sandbox-2", "200000000002")
THIRD = member("sandbox-3", "200000000003")


def caller(session: boto3.session.Session, url: str) -> dict:
    return session.client("sts", endpoint_url=url).get_caller_identity()


def new_case(subject: str) -> NewCase:
    return NewCase(subject, "amazon-elastic-compute-cloud-linux", "instance-issue", "low", "It stopped.")


def test_the_role_is_assumed_on_first_use_with_the_bots_session_name(sandbox3, sessions):
    session = sessions.session(SECOND)
    assert sessions.assumed("sandbox-2") == 0  # building a session asks STS nothing
    identity = caller(session, sandbox3.url)
    assert identity["Account"] == "200000000002"
    assert identity["Arn"] == f"arn:aws:sts::200000000002:assumed-role/AwsSupportBot/{ROLE_SESSION_NAME}"
    caller(session, sandbox3.url)
    assert sessions.assumed("sandbox-2") == 1 == sandbox3.accounts.assumed["sandbox-2"]
    assert sessions.session(SECOND) is session


def test_the_account_without_a_role_uses_the_bots_own_session(sessions, base_session, accounts):
    assert sessions.session(accounts[0]) is base_session


def test_the_external_id_is_sent_when_set(sandbox3, sessions):
    sandbox3.accounts.require_external_id("ext-1234")
    with pytest.raises(AccountUnreachable):
        sessions.verify(SECOND)
    with_id = member("sandbox-3", "200000000003", external_id="ext-1234")
    sessions.verify(with_id)
    assert sessions.assumed("sandbox-3") == 1


def test_credentials_refresh_themselves_before_they_expire(sandbox3, sessions):
    gateway = account_gateways([SECOND], sessions, endpoint_url=sandbox3.url)["sandbox-2"]
    gateway.list_cases()
    first_key = sessions.session(SECOND).get_credentials().get_frozen_credentials().access_key
    gateway.list_cases()
    assert sessions.assumed("sandbox-2") == 1
    # No timer of ours: time passing with no call asks STS nothing.
    sandbox3.advance_clock(46 * 60)
    assert sessions.assumed("sandbox-2") == 1
    # 14 minutes left of the hour: inside botocore's 15-minute advisory window, the next call refreshes.
    gateway.list_cases()
    assert sessions.assumed("sandbox-2") == 2
    second_key = sessions.session(SECOND).get_credentials().get_frozen_credentials().access_key
    assert second_key != first_key and second_key.startswith("ASIA200000000002")
    # Long past the first key's expiry: the sandbox refuses it, while the session has moved on.
    sandbox3.advance_clock(3 * 3600)
    stale = new_session(
        aws_access_key_id=first_key, aws_secret_access_key="s", aws_session_token="t", region_name="us-east-1"
    ).client("support", endpoint_url=sandbox3.url)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        stale.describe_severity_levels()
    assert caught.value.response["Error"]["Code"] == "ExpiredTokenException"
    gateway.list_cases()
    assert sessions.assumed("sandbox-2") == 3


def test_a_short_duration_is_what_sts_is_asked_for(sandbox3, base_session):
    sessions = AccountSessions(
        base_session=base_session, sts_endpoint_url=sandbox3.url, duration_seconds=900, time_fetcher=sandbox3.clock.now
    )
    credentials = sessions.session(SECOND).get_credentials()
    credentials.get_frozen_credentials()
    assert sessions.assumed("sandbox-2") == 1
    # 900 s is inside botocore's 15-minute advisory window from the start: the next use refreshes.
    credentials.get_frozen_credentials()
    assert sessions.assumed("sandbox-2") == 2


def test_a_denied_account_is_named_and_the_others_carry_on(sandbox3, sessions, accounts):
    sandbox3.accounts.deny_assume_role("sandbox-2")
    gateways = account_gateways(accounts, sessions, endpoint_url=sandbox3.url)
    with pytest.raises(AccountUnreachable) as caught:
        gateways["sandbox-2"].list_cases()
    error = caught.value
    assert (error.alias, error.account_id, error.code, error.retryable) == (
        "sandbox-2",
        "200000000002",
        "AccessDenied",
        False,
    )
    assert isinstance(error, AwsError)
    text = render.error_text(error)
    assert text.startswith("account sandbox-2 (200000000002) cannot be reached: assuming its role was denied")
    assert "trust policy" in text
    assert gateways["sandbox"].list_cases() == []
    assert gateways["sandbox-3"].list_cases() == []
    # Access granted later: the next call assumes the role, no restart needed.
    sandbox3.accounts.deny_assume_role("sandbox-2", denied=False)
    assert gateways["sandbox-2"].list_cases() == []


def test_an_unreachable_sts_is_a_retryable_account_problem(base_session):
    sessions = AccountSessions(base_session=base_session, sts_endpoint_url="http://127.0.0.1:9")
    with pytest.raises(AccountUnreachable) as caught:
        sessions.verify(SECOND)
    assert (caught.value.code, caught.value.retryable) == ("Unreachable", True)


def test_the_sts_endpoint_comes_from_botocores_own_variable(sandbox3, base_session, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sandbox3.url)
    sessions = AccountSessions(base_session=base_session, time_fetcher=sandbox3.clock.now)
    sessions.verify(THIRD)
    assert sandbox3.accounts.assumed["sandbox-3"] == 1


def test_each_accounts_gateway_sees_only_its_own_cases(sandbox3, sessions, accounts):
    gateways = account_gateways(accounts, sessions, endpoint_url=sandbox3.url)
    second_case = gateways["sandbox-2"].create_case(new_case("In the second account"))
    gateways["sandbox"].create_case(new_case("In the bot's own account"))
    assert second_case.startswith("case-200000000002-")
    assert [c.subject for c in gateways["sandbox-2"].list_cases()] == ["In the second account"]
    assert [c.subject for c in gateways["sandbox"].list_cases()] == ["In the bot's own account"]
    assert gateways["sandbox-3"].list_cases() == []
    assert gateways["sandbox-2"].get_case(second_case).subject == "In the second account"
    with pytest.raises(AwsError):
        gateways["sandbox-3"].get_case(second_case)

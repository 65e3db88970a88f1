"""Several emulated accounts: STS and Organizations speak their real protocols to plain boto3, and each
account's Support state is chosen by the access key that signed the request."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest
from botocore.config import Config

from bot.aws.session import new_session
from bot.sandbox import SandboxServer
from bot.sandbox.accounts import account_count_from_env
from bot.sandbox.records import NewCaseInput
from tests.sandbox.helpers import open_case

ROLE = "arn:aws:iam::{}:role/AwsSupportBot"
NO_RETRY = Config(region_name="us-east-1", retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture
def sandbox3() -> Iterator[SandboxServer]:
    server = SandboxServer(reply_delay_seconds=None, accounts=3).start()
    try:
        yield server
    finally:
        server.stop()


def own(server: SandboxServer, service: str) -> Any:
    session = new_session(aws_access_key_id="sandbox", aws_secret_access_key="s", region_name="us-east-1")
    return session.client(service, endpoint_url=server.url, config=NO_RETRY)


def assumed_client(server: SandboxServer, credentials: dict[str, Any], service: str = "support") -> Any:
    session = new_session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name="us-east-1",
    )
    return session.client(service, endpoint_url=server.url, config=NO_RETRY)


def assume(server: SandboxServer, account_id: str, **extra: Any) -> dict[str, Any]:
    answer = own(server, "sts").assume_role(RoleArn=ROLE.format(account_id), RoleSessionName="aws-support-bot", **extra)
    return answer["Credentials"]


def control(server: SandboxServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(server.url + path, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_aliases_and_ids_are_deterministic(sandbox3):
    listed = [(a.alias, a.account_id) for a in sandbox3.accounts.all]
    assert listed == [("sandbox", "123456789012"), ("sandbox-2", "200000000002"), ("sandbox-3", "200000000003")]


def test_assume_role_answers_a_key_that_names_the_account(sandbox3):
    credentials = assume(sandbox3, "200000000002", DurationSeconds=900)
    assert credentials["AccessKeyId"].startswith("ASIA200000000002")
    assert len(credentials["AccessKeyId"]) == 20
    lifetime = credentials["Expiration"] - sandbox3.clock.now()
    assert 880 <= lifetime.total_seconds() <= 900
    identity = assumed_client(sandbox3, credentials, "sts").get_caller_identity()
    assert identity["Account"] == "200000000002"
    assert identity["Arn"] == "arn:aws:sts::200000000002:assumed-role/AwsSupportBot/aws-support-bot"
    # The bot's own credentials are the first (management) account.
    assert own(sandbox3, "sts").get_caller_identity()["Account"] == "123456789012"
    assert sandbox3.accounts.assumed["sandbox-2"] == 1


def test_each_account_has_its_own_cases(sandbox3):
    second = assumed_client(sandbox3, assume(sandbox3, "200000000002"))
    third = assumed_client(sandbox3, assume(sandbox3, "200000000003"))
    in_second = open_case(second, "Only in the second account")
    assert in_second.startswith("case-200000000002-")
    open_case(own(sandbox3, "support"), "Only in the first account")
    assert [c["subject"] for c in second.describe_cases()["cases"]] == ["Only in the second account"]
    assert third.describe_cases()["cases"] == []
    assert [c.subject for c in sandbox3.cases.values()] == ["Only in the first account"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        third.describe_cases(caseIdList=[in_second])
    assert caught.value.response["Error"]["Code"] == "CaseIdNotFound"
    assert sandbox3.accounts.account("sandbox-2").calls["CreateCase"] == 1
    assert sandbox3.calls["CreateCase"] == 1


def test_denied_assume_role_is_access_denied_and_others_still_work(sandbox3):
    sandbox3.accounts.deny_assume_role("sandbox-2")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        assume(sandbox3, "200000000002")
    error = caught.value.response["Error"]
    assert (error["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
    assert "arn:aws:iam::200000000002:role/AwsSupportBot" in error["Message"]
    assert assume(sandbox3, "200000000003")["AccessKeyId"].startswith("ASIA200000000003")
    sandbox3.accounts.deny_assume_role("sandbox-2", denied=False)
    assert assume(sandbox3, "200000000002")


def test_unknown_account_and_wrong_external_id_are_denied(sandbox3):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        assume(sandbox3, "999999999999")
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    sandbox3.accounts.require_external_id("ext-1234")
    with pytest.raises(botocore.exceptions.ClientError):
        assume(sandbox3, "200000000002")
    with pytest.raises(botocore.exceptions.ClientError):
        assume(sandbox3, "200000000002", ExternalId="wrong-id")
    assert assume(sandbox3, "200000000002", ExternalId="ext-1234")


def test_a_duration_out_of_range_is_a_validation_error(sandbox3):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        assume(sandbox3, "200000000002", DurationSeconds=43201)
    assert caught.value.response["Error"]["Code"] == "ValidationError"


def test_expired_keys_are_refused_by_the_sandboxs_clock(sandbox3):
    client = assumed_client(sandbox3, assume(sandbox3, "200000000002", DurationSeconds=900))
    client.describe_severity_levels()
    sandbox3.advance_clock(901)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.describe_severity_levels()
    assert caught.value.response["Error"]["Code"] == "ExpiredTokenException"


def test_a_temporary_key_of_no_account_is_unrecognized(sandbox3):
    fake = {"AccessKeyId": "ASIA999999999999ABCD", "SecretAccessKey": "s", "SessionToken": "t"}
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        assumed_client(sandbox3, fake).describe_severity_levels()
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_list_accounts_pages_and_is_for_the_management_account_only(sandbox3):
    sandbox3.accounts.page_size = 2
    sandbox3.accounts.add_organization_member("300000000001", "Closed one", state="SUSPENDED")
    pages = list(own(sandbox3, "organizations").get_paginator("list_accounts").paginate())
    assert len(pages) == 2
    listed = [(a["Id"], a["Name"], a["State"]) for page in pages for a in page["Accounts"]]
    assert listed == [
        ("123456789012", "Sandbox", "ACTIVE"),
        ("200000000002", "Sandbox 2", "ACTIVE"),
        ("200000000003", "Sandbox 3", "ACTIVE"),
        ("300000000001", "Closed one", "SUSPENDED"),
    ]
    member = assumed_client(sandbox3, assume(sandbox3, "200000000002"), "organizations")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        member.list_accounts()
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"


def test_controls_over_http_name_the_account(sandbox3):
    second = assumed_client(sandbox3, assume(sandbox3, "200000000002"))
    case_id = open_case(second)
    reply = control(sandbox3, "/_sandbox/reply?account=sandbox-2", {"case_id": case_id, "body": "From AWS"})
    assert reply["body"] == "From AWS"
    described = control(sandbox3, "/_sandbox/accounts", {"deny": "sandbox-3"})
    assert [a["assume_role_denied"] for a in described["accounts"]] == [False, False, True]
    with pytest.raises(botocore.exceptions.ClientError):
        assume(sandbox3, "200000000003")
    control(
        sandbox3,
        "/_sandbox/faults?account=200000000002",
        {"operation": "DescribeServices", "code": "ThrottlingException"},
    )
    with pytest.raises(botocore.exceptions.ClientError):
        second.describe_services()
    own(sandbox3, "support").describe_services()  # the first account has no such fault


def test_each_account_keeps_its_cases_across_restarts(tmp_path):
    path = str(tmp_path / "sandbox.json")
    with SandboxServer(reply_delay_seconds=None, accounts=2, state_path=path) as server:
        case_id = open_case(assumed_client(server, assume(server, "200000000002")), "Kept")
    assert (tmp_path / "sandbox.sandbox-2.json").exists()
    with SandboxServer(reply_delay_seconds=None, accounts=2, state_path=path) as server:
        assert [c.subject for c in server.accounts.account("sandbox-2").cases.values()] == ["Kept"]
        assert case_id in server.accounts.account("sandbox-2").cases
        assert server.cases == {}


@pytest.mark.parametrize(("value", "count"), [(None, 1), ("", 1), ("4", 4)])
def test_account_count_from_env(value, count):
    env = {} if value is None else {"BOT_SANDBOX_ACCOUNTS": value}
    assert account_count_from_env(env) == count


@pytest.mark.parametrize("value", ["0", "-1", "many", "1000"])
def test_account_count_from_env_refuses_nonsense(value):
    with pytest.raises(ValueError):
        account_count_from_env({"BOT_SANDBOX_ACCOUNTS": value})


def test_a_case_can_be_backdated_over_http_and_after_time_then_leaves_it_out(sandbox3):
    second = assumed_client(sandbox3, assume(sandbox3, "200000000002"))
    old, new = open_case(second), open_case(second)
    answer = control(
        sandbox3, "/_sandbox/case?account=sandbox-2", {"case_id": old, "time_created": "2025-01-02T03:04:05.000Z"}
    )
    assert answer == {"ok": True}
    listed = second.describe_cases(afterTime="2025-06-01T00:00:00Z")["cases"]
    assert [c["caseId"] for c in listed] == [new]
    everything = second.describe_cases(afterTime="2024-12-01T00:00:00Z")["cases"]
    assert [c["caseId"] for c in everything] == [new, old]  # newest first
    with pytest.raises(urllib.error.HTTPError) as refused:
        control(sandbox3, "/_sandbox/case?account=sandbox-2", {"case_id": old, "time_created": "last year"})
    assert refused.value.code == 400


def test_two_accounts_cases_never_share_a_case_number(sandbox3: SandboxServer) -> None:
    """AWS numbers every account's cases in one sequence. Counted apart, two of the sandbox's accounts
    gave two cases the same number, and a search for one case's number found the other's too."""
    states = [sandbox3.accounts.account(alias).state for alias in ("sandbox-2", "sandbox-3")]
    opened = [
        state.create_case(NewCaseInput(f"Case {n}", "Body", "general-info", "general-guidance", "low", "en", "x"))
        for n in range(200)
        for state in states
    ]
    numbers = [state.cases[case_id].display_id for state in states for case_id in opened if case_id in state.cases]
    assert len(opened) == 400 and len(set(numbers)) == 400, "two cases of the sandbox's accounts share a number"


def test_after_a_restart_two_accounts_cases_still_never_share_a_case_number(monkeypatch: Any) -> None:
    """review26: each account's state is saved apart, and a new process started counting afresh."""
    from bot.sandbox import state as sandbox_state

    def case(n: int) -> NewCaseInput:
        return NewCaseInput(f"Case {n}", "Body", "general-info", "general-guidance", "low", "en", "x")

    first = SandboxServer(reply_delay_seconds=None, accounts=3)
    few, many = (first.accounts.account(alias).state for alias in ("sandbox-2", "sandbox-3"))
    for n in range(50):
        if n < 5:
            few.create_case(case(n))
        many.create_case(case(n))
    saved = [few.to_json(), many.to_json()]

    monkeypatch.setattr(sandbox_state, "_CASE_NUMBERS", sandbox_state._CaseNumbers())  # a new process
    second = SandboxServer(reply_delay_seconds=None, accounts=3)
    restarted = [second.accounts.account(alias).state for alias in ("sandbox-2", "sandbox-3")]
    for state, raw in zip(restarted, saved, strict=True):
        state.load_json(raw)
    for n in range(20):
        restarted[0].create_case(case(n))
    numbers = [c.display_id for state in restarted for c in state.cases.values()]
    assert len(numbers) == 75 and len(set(numbers)) == 75, "a number given before the restart was given again"

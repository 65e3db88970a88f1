"""The directory: lookups, which channel may use which account, channel defaults, organization discovery."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.accounts.config import DEFAULT_ALIAS, Account, parse_accounts, single_account
from bot.accounts.directory import AccountDirectory, build_directory, discovered_accounts
from bot.accounts.errors import AccountNotAllowed, UnknownAccount
from bot.store.tables import Store
from tests.accounts.conftest import member

DISCOVER = '[defaults]\nrole_name = "AwsSupportBot"\nexternal_id = "ext-1"\n[organization]\ndiscover = true\n'


@pytest.fixture
def store(tmp_path):
    opened = Store(str(tmp_path / "bot.sqlite"))
    yield opened
    opened.close()


def test_lookups_by_alias_and_id(accounts):
    directory = AccountDirectory(accounts)
    assert directory.get("sandbox-2").id == "200000000002"
    assert directory.get(" Sandbox-2 ") is directory.get("sandbox-2")
    assert directory.by_id("200000000003").alias == "sandbox-3"
    assert directory.get("nope") is None and directory.by_id("999999999999") is None
    with pytest.raises(UnknownAccount) as caught:
        directory.require("nope")
    assert caught.value.params["known"] == ["sandbox", "sandbox-2", "sandbox-3"]
    assert [a.alias for a in directory] == ["sandbox", "sandbox-2", "sandbox-3"]
    assert not directory.single


def test_restricted_accounts_only_in_their_channels(accounts):
    directory = AccountDirectory(accounts)
    assert [a.alias for a in directory.usable_in("CPROD")] == ["sandbox", "sandbox-2", "sandbox-3"]
    assert [a.alias for a in directory.usable_in("COTHER")] == ["sandbox", "sandbox-3"]
    with pytest.raises(AccountNotAllowed) as caught:
        directory.check_usable("COTHER", directory.require("sandbox-2"))
    assert caught.value.params == {"alias": "sandbox-2", "account_id": "200000000002"}
    assert directory.check_usable("CPROD", directory.require("sandbox-2")).alias == "sandbox-2"


def test_a_channel_that_may_use_nothing_has_no_default():
    directory = AccountDirectory([member("only", "111122223333", channels=frozenset({"CONE"}))])
    assert directory.usable_in("CTWO") == [] and directory.default_for("CTWO") is None


def test_channel_default_is_stored_and_survives_a_new_directory(accounts, store):
    directory = AccountDirectory(accounts, store=store)
    assert directory.default_for("CPROD").alias == "sandbox"  # nothing chosen: the first it may use
    directory.set_default("CPROD", "sandbox-2", user="UADMIN")
    assert directory.default_for("CPROD").alias == "sandbox-2"
    assert directory.default_for("COTHER").alias == "sandbox"
    record = store.table("channel_accounts").get("CPROD")
    assert (record["alias"], record["account_id"], record["set_by"]) == ("sandbox-2", "200000000002", "UADMIN")
    assert AccountDirectory(accounts, store=store).default_for("CPROD").alias == "sandbox-2"
    directory.clear_default("CPROD")
    assert directory.default_for("CPROD").alias == "sandbox"


def test_a_default_the_channel_may_not_use_is_refused(accounts, store):
    directory = AccountDirectory(accounts, store=store)
    with pytest.raises(AccountNotAllowed):
        directory.set_default("COTHER", "sandbox-2")
    with pytest.raises(UnknownAccount):
        directory.set_default("COTHER", "nope")
    assert store.table("channel_accounts").get("COTHER") is None


def test_a_stored_default_follows_its_account_through_a_rename_and_yields_to_new_restrictions(accounts, store):
    AccountDirectory(accounts, store=store).set_default("CPROD", "sandbox-3")
    renamed = [accounts[0], accounts[1], member("shared", "200000000003")]
    assert AccountDirectory(renamed, store=store).default_for("CPROD").alias == "shared"
    restricted = [accounts[0], accounts[1], member("shared", "200000000003", channels=frozenset({"CELSE"}))]
    assert AccountDirectory(restricted, store=store).default_for("CPROD").alias == "sandbox"


def test_the_own_account_id_is_asked_once_and_only_when_needed():
    asked = []

    def caller_identity() -> str:
        asked.append(1)
        return "123456789012"

    directory = AccountDirectory(single_account().accounts, own_account_id=caller_identity)
    assert directory.single and directory.get(DEFAULT_ALIAS).id == ""
    assert asked == []
    assert directory.account_id(directory.get(DEFAULT_ALIAS)) == "123456789012"
    assert directory.by_id("123456789012").alias == DEFAULT_ALIAS
    assert directory.account_id(directory.get(DEFAULT_ALIAS)) == "123456789012"
    assert asked == [1]


def test_an_unknown_own_account_id_is_asked_again_later(monkeypatch):
    from bot.accounts import directory as directory_module

    answers = ["", "123456789012"]
    directory = AccountDirectory(single_account().accounts, own_account_id=lambda: answers.pop(0))
    assert directory.account_id(directory.get(DEFAULT_ALIAS)) == ""
    # Not at once: every event and header asks, and STS was just unreachable.
    assert directory.account_id(directory.get(DEFAULT_ALIAS)) == ""
    assert answers == ["123456789012"]
    monkeypatch.setattr(directory_module, "STS_RETRY_SECONDS", 0.0)  # a minute later
    assert directory.account_id(directory.get(DEFAULT_ALIAS)) == "123456789012"


def listed(account_id: str, name: str, state: str = "ACTIVE", joined: int = 0) -> dict:
    return {"Id": account_id, "Name": name, "State": state, "JoinedTimestamp": datetime.fromtimestamp(joined, UTC)}


def test_discovered_accounts_are_active_unique_and_never_override_the_file():
    config = parse_accounts(DISCOVER + '[[accounts]]\nalias = "prod"\nid = "111122223333"\nchannels = ["CPROD"]\n')
    found = discovered_accounts(
        config,
        [
            listed("111122223333", "Production"),  # in the file: the file's entry wins
            listed("444455556666", "Prod", joined=5),  # alias "prod" taken by the file
            listed("777788889999", "Old", state="SUSPENDED"),
            listed("222233334444", "Shared Services", joined=1),
            listed("555566667777", "shared services!", joined=2),  # same slug, joined later
            listed("888899990000", "All", joined=3),  # a reserved word
            listed("999900001111", "***", joined=4),  # nothing left of the name
            {"Id": "121212121212", "Name": "Legacy", "Status": "ACTIVE", "JoinedTimestamp": 6},  # Status only
        ],
        taken=config.accounts,
    )
    assert [(a.alias, a.id) for a in found] == [
        ("shared-services", "222233334444"),
        ("shared-services-7777", "555566667777"),
        ("all-0000", "888899990000"),
        ("account-999900001111", "999900001111"),
        ("prod-6666", "444455556666"),
        ("legacy", "121212121212"),
    ]
    assert all(a.role_arn == f"arn:aws:iam::{a.id}:role/AwsSupportBot" for a in found)
    assert all(a.external_id == "ext-1" and a.channels is None for a in found)


def test_discovery_against_the_sandbox_pages_through_every_account(sandbox3, base_session, monkeypatch):
    sandbox3.accounts.page_size = 1
    sandbox3.accounts.add_organization_member("300000000001", "Gone", state="SUSPENDED")
    # botocore's own variable points ListAccounts at the sandbox; nothing is passed.
    monkeypatch.setenv("AWS_ENDPOINT_URL_ORGANIZATIONS", sandbox3.url)
    config = parse_accounts(DISCOVER + '[[accounts]]\nalias = "mine"\nid = "200000000003"\n')
    directory = build_directory(config, base_session=base_session)
    assert [(a.alias, a.id) for a in directory] == [
        ("mine", "200000000003"),
        ("sandbox", "123456789012"),
        ("sandbox-2", "200000000002"),
    ]
    assert sandbox3.accounts.calls["ListAccounts"] == 4  # one page per account
    assert directory.problems == ()


def test_a_failed_discovery_is_reported_and_the_file_still_served(sandbox3, sessions):
    config = parse_accounts(DISCOVER + '[[accounts]]\nalias = "mine"\nid = "200000000003"\n')
    # A member account's credentials may not list the organization.
    member_session = sessions.session(member("sandbox-2", "200000000002"))
    directory = build_directory(config, base_session=member_session, organizations_endpoint_url=sandbox3.url)
    assert [a.alias for a in directory] == ["mine"]
    (problem,) = directory.problems
    assert problem.startswith("organization discovery failed (AccessDeniedException")


def test_a_directory_needs_an_account():
    with pytest.raises(ValueError):
        AccountDirectory([])
    assert isinstance(single_account().accounts[0], Account)

"""BOT_ACCOUNTS_FILE: the contract's example reads as written; every mistake gets its own clear line."""

from __future__ import annotations

import pytest

from bot.accounts.config import (
    DEFAULT_ALIAS,
    AccountsFileError,
    accounts_config_from_env,
    load_accounts_file,
    parse_accounts,
    slug,
)
from bot.config import ConfigError

CONTRACT_EXAMPLE = """
[defaults]
role_name = "AwsSupportBot"          # assumed as arn:aws:iam::<id>:role/<role_name>
external_id = "from-the-bot-1234"

[[accounts]]
alias = "prod"
id = "111122223333"
channels = ["C0123PROD"]
role_arn = "arn:aws:iam::111122223333:role/SupportFromSlack"

[[accounts]]
alias = "staging"
id = "012345678901"

[organization]
discover = true
alias_from = "name"
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(AccountsFileError) as caught:
        parse_accounts(text, path="accounts.toml")
    return list(caught.value.problems)


def test_the_contracts_example_reads_as_written():
    config = parse_accounts(CONTRACT_EXAMPLE, path="accounts.toml")
    prod, staging = config.accounts
    assert (prod.alias, prod.id, prod.role_arn) == (
        "prod",
        "111122223333",
        "arn:aws:iam::111122223333:role/SupportFromSlack",
    )
    assert prod.channels == frozenset({"C0123PROD"})
    assert prod.external_id == "from-the-bot-1234"
    # role_name under [defaults] names the role in the account's own ID; no channels: every channel.
    assert staging.role_arn == "arn:aws:iam::012345678901:role/AwsSupportBot"
    assert staging.channels is None
    assert staging.allowed_in("CANY") and prod.allowed_in("C0123PROD") and not prod.allowed_in("COTHER")
    assert config.discovery is not None and config.discovery.alias_from == "name"
    assert config.role_arn_for("444455556666") == "arn:aws:iam::444455556666:role/AwsSupportBot"
    assert "from-the-bot-1234" not in repr(prod)


def test_an_account_may_carry_its_own_external_id():
    config = parse_accounts(
        '[defaults]\nrole_name = "R"\nexternal_id = "shared-id"\n'
        '[[accounts]]\nalias = "a"\nid = "111122223333"\nexternal_id = "own-id"\n'
    )
    assert config.accounts[0].external_id == "own-id"


def test_without_the_file_the_bot_serves_its_own_account_as_default():
    config = accounts_config_from_env({})
    assert [(a.alias, a.id, a.role_arn, a.channels) for a in config.accounts] == [(DEFAULT_ALIAS, "", None, None)]
    assert config.source is None and config.discovery is None


def test_the_partition_follows_the_support_region(tmp_path):
    path = tmp_path / "accounts.toml"
    path.write_text('[defaults]\nrole_name = "R"\n[[accounts]]\nalias = "gov"\nid = "111122223333"\n')
    config = accounts_config_from_env({"BOT_ACCOUNTS_FILE": str(path), "AWS_SUPPORT_REGION": "us-gov-west-1"})
    assert config.accounts[0].role_arn == "arn:aws-us-gov:iam::111122223333:role/R"


def test_a_missing_file_says_so_and_what_to_do(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(AccountsFileError) as caught:
        accounts_config_from_env({"BOT_ACCOUNTS_FILE": str(missing)})
    (line,) = caught.value.problems
    assert f"there is no file {missing}" in line and "unset it" in line
    # A ConfigError: the console prints it and exits 2 like any other bad setting.
    assert isinstance(caught.value, ConfigError)
    assert str(missing) in str(caught.value)


def test_an_unreadable_file_names_the_reason(tmp_path):
    with pytest.raises(AccountsFileError) as caught:
        load_accounts_file(str(tmp_path))  # a directory: open() fails with the OS's reason
    (line,) = caught.value.problems
    assert "cannot be read" in line and str(tmp_path) in line


def test_a_file_that_is_not_utf8_says_so(tmp_path):
    path = tmp_path / "accounts.toml"
    path.write_bytes(b'[[accounts]]\nalias = "\xff"\n')
    with pytest.raises(AccountsFileError) as caught:
        load_accounts_file(str(path))
    assert "UTF-8" in caught.value.problems[0]


def test_bad_toml_names_the_line_and_column():
    (line,) = problems_of('[defaults]\nrole_name = "R"\n[[accounts]]\nalias = prod\n')
    assert line.startswith("line 4, column 9: not valid TOML")


def test_every_mistake_is_reported_at_once_one_line_each():
    text = """
colour = "blue"
[defaults]
role_name = "Aws Support Bot"
external_id = "x"
[[accounts]]
alias = "Prod!"
id = "1111-2222-3333"
channels = ["#prod"]
[[accounts]]
alias = "all"
id = 12345678901
[[accounts]]
alias = "shared"
id = "444455556666"
role_arn = "arn:aws:iam::999999999999:role/Other"
[[accounts]]
alias = "shared"
id = "777788889999"
role_arn = "arn:aws:iam::777788889999:user/bob"
[[accounts]]
id = "777788889999"
role_arn = "arn:aws:iam::777788889999:role/R"
channels = []
region = "eu-west-1"
[organization]
discover = "yes"
alias_from = "email"
"""
    problems = problems_of(text)
    expected = [
        'top level: unknown key "colour"',
        '[defaults]: role_name "Aws Support Bot" is not an IAM role name',
        "[defaults]: external_id must be 2 to 1224",
        "[organization]: discover must be true or false",
        '[organization]: alias_from "email" is not supported; use name',
        '[[accounts]] entry 1: alias "Prod!" may hold only lower-case letters, digits and inner hyphens, '
        'at most 32 characters, e.g. "prod"',
        '[[accounts]] entry 1 ("Prod!"): id "1111-2222-3333" is not an AWS account ID (exactly 12 digits)',
        '[[accounts]] entry 1 ("Prod!"): "#prod" is not a Slack channel ID',
        '[[accounts]] entry 2: alias "all" is a word the commands use',
        '[[accounts]] entry 2 ("all"): id 12345678901 must be in double quotes (id = "012345678901")',
        '[[accounts]] entry 3 ("shared"): role_arn "arn:aws:iam::999999999999:role/Other" is a role of another '
        "account than id 444455556666",
        '[[accounts]] entry 4 ("shared"): role_arn "arn:aws:iam::777788889999:user/bob" is not an IAM role ARN',
        '[[accounts]] entry 4 ("shared"): alias "shared" is already used by entry 3',
        "[[accounts]] entry 5: account 777788889999 is already listed as entry 4",
        '[[accounts]] entry 5: unknown key "region"',
        "[[accounts]] entry 5: alias is missing",
        "[[accounts]] entry 5: channels is empty",
    ]
    for start in expected:
        assert sum(1 for problem in problems if problem.startswith(start)) == 1, (start, problems)
    assert len(problems) == len(expected), problems
    assert all("\n" not in problem for problem in problems)
    # The external ID is not echoed, even when it is wrong.
    assert not any('"x"' in problem for problem in problems)


def test_duplicates_name_the_first_entry():
    problems = problems_of(
        '[defaults]\nrole_name = "R"\n'
        '[[accounts]]\nalias = "prod"\nid = "111122223333"\n'
        '[[accounts]]\nalias = "prod"\nid = "444455556666"\n'
        '[[accounts]]\nalias = "other"\nid = "111122223333"\n'
    )
    assert problems == [
        '[[accounts]] entry 2 ("prod"): alias "prod" is already used by entry 1; each account needs its own.',
        '[[accounts]] entry 3 ("other"): account 111122223333 is already listed as entry 1; list each account once.',
    ]


def test_an_account_without_any_role_is_refused():
    (line,) = problems_of('[[accounts]]\nalias = "prod"\nid = "111122223333"\n')
    assert line == '[[accounts]] entry 1 ("prod"): no role to assume: set role_arn here, or role_name under [defaults].'


def test_discovery_needs_a_role_name():
    (line,) = problems_of("[organization]\ndiscover = true\n")
    assert "discover = true needs role_name under [defaults]" in line


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("", "the file names no account"),
        ('[defaults]\nrole_name = "R"\n', "the file names no account"),
        ("accounts = 3\n", '"accounts" must be a list of tables'),
        ("defaults = 3\n[organization]\ndiscover = true\n", '"defaults" must be a table'),
        (
            '[defaults]\nrole_name = "R"\n[[accounts]]\nalias = 7\nid = "111122223333"\n',
            "[[accounts]] entry 1: alias must be text",
        ),
        (
            '[defaults]\nrole_name = "R"\n[[accounts]]\nalias = "a"\nid = "111122223333"\nchannels = "C1"\n',
            '[[accounts]] entry 1 ("a"): channels must be a list',
        ),
    ],
)
def test_shapes_toml_allows_but_the_file_does_not(text, start):
    problems = problems_of(text)
    assert any(problem.startswith(start) for problem in problems), problems


def test_the_whole_error_lists_every_line_under_one_heading():
    with pytest.raises(AccountsFileError) as caught:
        parse_accounts('[[accounts]]\nalias = "A"\nid = "1"\n', path="/etc/bot/accounts.toml")
    message = str(caught.value)
    assert message.startswith("BOT_ACCOUNTS_FILE /etc/bot/accounts.toml cannot be used (3 mistakes)")
    assert message.count("\n  - ") == 3


@pytest.mark.parametrize(
    ("name", "alias"),
    [
        ("Production", "production"),
        ("Shared Services (EU)", "shared-services-eu"),
        ("Ünïcode!!", "n-code"),
        ("---", ""),
    ],
)
def test_slug(name, alias):
    assert slug(name) == alias

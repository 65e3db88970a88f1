"""`python -m bot check` per account: can the bot assume the role there, and does AWS Support answer?"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bot import render
from bot.accounts.config import Account, AccountsFileError, accounts_config_from_env
from bot.accounts.directory import AccountDirectory, build_directory
from bot.accounts.errors import AccountUnreachable
from bot.accounts.sessions import AccountSessions, account_gateways
from bot.aws.gateway import SupportGateway
from bot.errors import AwsError, BotError

NO_SUPPORT_PLAN = "SubscriptionRequiredException"
CHECK_WORKERS = 8  # a slow account must not hold up the report for fifty


@dataclass(frozen=True)
class AccountCheck:
    name: str  # the account's alias; "accounts" for the file itself
    ok: bool
    detail: str


def check_account(
    account: Account, account_id: str, sessions: AccountSessions, gateway: SupportGateway
) -> AccountCheck:
    assumed = account.role_arn is not None
    try:
        if assumed:
            sessions.verify(account)
        levels = gateway.severity_levels()
    except AccountUnreachable as error:
        return AccountCheck(
            account.alias,
            False,
            render.console_text(
                "check_account_failed", account_id=account_id, problem=render.console_error_text(error)
            ),
        )
    except AwsError as error:
        if error.code == NO_SUPPORT_PLAN:
            return AccountCheck(
                account.alias,
                False,
                render.console_text("check_account_no_plan", account_id=account_id, assumed=assumed),
            )
        return AccountCheck(
            account.alias,
            False,
            render.console_text(
                "check_account_failed", account_id=account_id, problem=render.console_error_text(error)
            ),
        )
    detail = render.console_text(
        "check_account_ok", account_id=account_id, levels=[level.code for level in levels], assumed=assumed
    )
    return AccountCheck(account.alias, True, detail)


def check_accounts(
    directory: AccountDirectory, sessions: AccountSessions, gateways: Mapping[str, SupportGateway]
) -> list[AccountCheck]:
    """One line per account, in the directory's order; one unreachable account never stops the others."""
    problems = [
        AccountCheck("accounts", False, render.console_text("check_accounts_file", problem=p))
        for p in directory.problems
    ]

    def one(account: Account) -> AccountCheck:
        return check_account(account, directory.account_id(account), sessions, gateways[account.alias])

    with ThreadPoolExecutor(max_workers=min(CHECK_WORKERS, len(directory))) as pool:
        return problems + list(pool.map(one, directory))


def check_accounts_from_env(
    env: Mapping[str, str] | None = None, *, region: str = "us-east-1"
) -> list[AccountCheck] | None:
    """The per-account lines when BOT_ACCOUNTS_FILE is set (None: the one-account check applies).

    Endpoints come from botocore's own AWS_ENDPOINT_URL_STS / _ORGANIZATIONS / _SUPPORT.
    """
    env = os.environ if env is None else env
    if not env.get("BOT_ACCOUNTS_FILE", "").strip():
        return None
    try:
        config = accounts_config_from_env(env)
    except AccountsFileError as error:
        return [
            AccountCheck("accounts", False, render.console_text("check_accounts_file", problem=p))
            for p in error.problems
        ]
    try:
        sessions = AccountSessions(region=region)
        directory = build_directory(config, base_session=sessions.base_session, region=region)
        gateways = account_gateways(directory, sessions, region=region)
    except BotError as error:
        return [AccountCheck("accounts", False, render.console_error_text(error))]
    return check_accounts(directory, sessions, gateways)

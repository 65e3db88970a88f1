"""Which accounts the bot serves and which channel may use which: lookups, channel rules, defaults.

The file's accounts come first and in its order; accounts found through organizations:ListAccounts
follow. A channel's default account is kept in the store (table `channel_accounts`), so every
replica agrees on it and it survives restarts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from bot.accounts.config import DEFAULT_ALIAS, RESERVED_ALIASES, Account, AccountsConfig, slug
from bot.accounts.errors import AccountNotAllowed, UnknownAccount
from bot.accounts.sessions import aws_problem
from bot.aws.session import new_session
from bot.store.backend import Store

logger = logging.getLogger(__name__)

CHANNEL_ACCOUNTS_TABLE = "channel_accounts"
ACTIVE = "ACTIVE"
STS_RETRY_SECONDS = 60.0  # while STS cannot tell the own account's ID


class AccountDirectory:
    """Every served account, by alias and by ID, and what each channel may use."""

    def __init__(
        self,
        accounts: Sequence[Account],
        *,
        store: Store | None = None,
        own_account_id: Callable[[], str] | None = None,
        problems: Sequence[str] = (),
    ) -> None:
        if not accounts:
            raise ValueError("a directory needs at least one account")
        self._accounts = tuple(accounts)
        self._by_alias = {account.alias: account for account in self._accounts}
        self._by_id = {account.id: account for account in self._accounts if account.id}
        self._store = store
        self._own_account_id = own_account_id
        self._resolved: dict[str, str] = {}
        self._unanswered_at: dict[str, float] = {}
        self._lock = threading.Lock()
        # Lines for `accounts`, `check` and the log: what went wrong while building the directory.
        self.problems = tuple(problems)

    def __iter__(self) -> Iterator[Account]:
        return iter(self._accounts)

    def __len__(self) -> int:
        return len(self._accounts)

    @property
    def accounts(self) -> tuple[Account, ...]:
        return self._accounts

    @property
    def single(self) -> bool:
        """Today's bot: one account, nothing to choose, no account named anywhere."""
        return len(self._accounts) == 1

    # Lookups -------------------------------------------------------------------------------

    def get(self, alias: str) -> Account | None:
        return self._by_alias.get(alias.strip().lower())

    def require(self, alias: str) -> Account:
        account = self.get(alias)
        if account is None:
            raise UnknownAccount(alias.strip(), [a.alias for a in self._accounts])
        return account

    def by_id(self, account_id: str) -> Account | None:
        account_id = account_id.strip()
        found = self._by_id.get(account_id)
        if found is not None or not account_id:
            return found
        # The account of the bot's own credentials has no ID until STS has been asked.
        for account in self._accounts:
            if not account.id and self.account_id(account) == account_id:
                return account
        return None

    def account_id(self, account: Account) -> str:
        """The account's 12-digit ID; for the bot's own credentials asked of STS once ("" while it cannot tell)."""
        if account.id:
            return account.id
        with self._lock:
            known = self._resolved.get(account.alias)
            asked_recently = (
                time.monotonic() - self._unanswered_at.get(account.alias, -STS_RETRY_SECONDS) < STS_RETRY_SECONDS
            )
        if known or self._own_account_id is None or asked_recently:
            return known or ""
        resolved = self._own_account_id()
        with self._lock:
            if resolved:
                self._resolved[account.alias] = resolved
            else:
                # Asked at most once a minute while STS cannot tell: every event and header asks.
                self._unanswered_at[account.alias] = time.monotonic()
        return resolved

    def every_id_known(self) -> bool:
        """Whether each account's ID is known, without asking STS (by_id and account_id ask it)."""
        with self._lock:
            return all(account.id or self._resolved.get(account.alias) for account in self._accounts)

    # Channels ------------------------------------------------------------------------------

    def usable_in(self, channel: str) -> list[Account]:
        """The accounts this channel may use, in the file's order (accounts without `channels`: everywhere)."""
        return [account for account in self._accounts if account.allowed_in(channel)]

    def check_usable(self, channel: str, account: Account) -> Account:
        if not account.allowed_in(channel):
            raise AccountNotAllowed(account.alias, self.account_id(account))
        return account

    def default_for(self, channel: str) -> Account | None:
        """The account an admin chose for this channel, while the channel may still use it; else the
        first account the channel may use; None when it may use none."""
        chosen = self._stored_default(channel)
        if chosen is not None and chosen.allowed_in(channel):
            return chosen
        usable = self.usable_in(channel)
        return usable[0] if usable else None

    def set_default(self, channel: str, alias: str, *, user: str = "") -> Account:
        """Make `alias` this channel's default (the caller checks that `user` is an admin)."""
        account = self.check_usable(channel, self.require(alias))
        table = self._table()
        record = {"alias": account.alias, "account_id": account.id, "set_by": user, "set_at": self._now()}
        table.put(channel, record)
        return account

    def clear_default(self, channel: str) -> None:
        self._table().delete(channel)

    def _stored_default(self, channel: str) -> Account | None:
        if self._store is None:
            return None
        record = self._table().get(channel)
        if not isinstance(record, dict):
            return None
        # The ID first: an alias renamed in the file still means the same account.
        return self.by_id(str(record.get("account_id") or "")) or self.get(str(record.get("alias") or ""))

    def _table(self) -> Any:
        if self._store is None:
            raise RuntimeError("this directory has no store: channel defaults cannot be kept")
        return self._store.table(CHANNEL_ACCOUNTS_TABLE)

    def _now(self) -> float:
        return self._store.now() if self._store is not None else 0.0


# Building ------------------------------------------------------------------------------------


def build_directory(
    config: AccountsConfig,
    *,
    store: Store | None = None,
    base_session: boto3.session.Session | None = None,
    region: str = "us-east-1",
    organizations_endpoint_url: str | None = None,
    own_account_id: Callable[[], str] | None = None,
) -> AccountDirectory:
    """The directory for `config`: its accounts, then (with [organization] discover) the organization's.

    A failed discovery is logged and kept in `problems`; the file's accounts are served regardless.
    """
    from bot import render

    accounts = list(config.accounts)
    problems: list[str] = []
    if config.discovery is not None:
        session = base_session or new_session()
        try:
            listed = list_organization_accounts(session, region=region, endpoint_url=organizations_endpoint_url)
        except _DiscoveryFailed as failure:
            problem = render.text("accounts_discovery_failed", code=failure.code, reason=failure.reason)
            logger.warning("%s", problem)
            problems.append(problem)
            listed = []
        accounts.extend(discovered_accounts(config, listed, taken=accounts))
        if not accounts:
            # Nothing listed and nothing found: serve the bot's own account rather than nothing.
            accounts.append(Account(alias=DEFAULT_ALIAS, id=""))
    return AccountDirectory(accounts, store=store, own_account_id=own_account_id, problems=problems)


class _DiscoveryFailed(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(code)
        self.code = code
        self.reason = reason


def list_organization_accounts(
    session: boto3.session.Session, *, region: str = "us-east-1", endpoint_url: str | None = None
) -> list[dict[str, Any]]:
    """Every account organizations:ListAccounts names, all pages (raw, as AWS answers)."""
    config = Config(region_name=region, retries={"mode": "standard", "total_max_attempts": 5}, connect_timeout=5)
    try:
        # endpoint_url None: botocore honours AWS_ENDPOINT_URL_ORGANIZATIONS itself.
        client = session.client("organizations", config=config, endpoint_url=endpoint_url)
        pages = client.get_paginator("list_accounts").paginate()
        return [raw for page in pages for raw in page.get("Accounts") or []]
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        code, reason = aws_problem(exc)
        raise _DiscoveryFailed(code, reason) from exc


def discovered_accounts(
    config: AccountsConfig, listed: Iterable[dict[str, Any]], *, taken: Iterable[Account] = ()
) -> list[Account]:
    """ACTIVE organization accounts not already listed in the file, each with a unique slugged alias.

    Oldest first, so that an account joining later never takes the alias of one already served.
    """
    taken = list(taken)
    ids = {account.id for account in taken}
    aliases = {account.alias for account in taken}
    found: list[Account] = []
    for raw in sorted(listed, key=_joined_order):
        account_id = str(raw.get("Id") or "")
        # `State` replaces the deprecated `Status`; older endpoints send only the latter.
        state = raw.get("State") or raw.get("Status")
        role_arn = config.role_arn_for(account_id)
        if state != ACTIVE or account_id in ids or len(account_id) != 12 or role_arn is None:
            continue
        alias = _unique_alias(slug(str(raw.get("Name") or "")), account_id, aliases)
        ids.add(account_id)
        aliases.add(alias)
        found.append(Account(alias, account_id, role_arn, config.defaults.external_id, None))
    return found


def _joined_order(raw: dict[str, Any]) -> tuple[str, str]:
    joined = raw.get("JoinedTimestamp")
    when = joined.isoformat() if isinstance(joined, datetime) else str(joined or "")
    return (when, str(raw.get("Id") or ""))


def _unique_alias(base: str, account_id: str, taken: set[str]) -> str:
    base = base or f"account-{account_id}"
    for candidate in (base, f"{base[:27].rstrip('-')}-{account_id[-4:]}", f"{base[:19].rstrip('-')}-{account_id}"):
        if candidate not in taken and candidate not in RESERVED_ALIASES:
            return candidate
    return f"account-{account_id}"

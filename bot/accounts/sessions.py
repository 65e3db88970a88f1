"""A boto3 session per account, its credentials from sts:AssumeRole and renewed by botocore itself.

botocore's DeferredRefreshableCredentials calls our refresh function on first use and again when the
credentials come within 15 minutes of expiring (advisory: a failure keeps the old ones) or 10
(mandatory: a failure is raised to the caller). No timer of ours; an idle account costs nothing.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config
from botocore.credentials import (
    CredentialProvider,
    CredentialResolver,
    Credentials,
    DeferredRefreshableCredentials,
    _local_now,
)

from bot.accounts.config import Account
from bot.accounts.errors import AccountUnreachable
from bot.aws.gateway import SupportGateway
from bot.aws.session import new_botocore_session, new_session

logger = logging.getLogger(__name__)

ROLE_SESSION_NAME = "aws-support-bot"
DEFAULT_DURATION_SECONDS = 3600
RETRYABLE_CODES = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded", "ServiceUnavailable"})
CONNECTION_ERRORS = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
)


def aws_problem(exc: Exception) -> tuple[str, str]:
    """(code, AWS's own words) of a botocore failure, for messages that name what went wrong."""
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        return str(error.get("Code", "")), str(error.get("Message", ""))
    if isinstance(exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError):
        return "NoCredentials", ""
    if isinstance(exc, CONNECTION_ERRORS):
        return "Unreachable", str(exc)
    return type(exc).__name__, str(exc)


class _AssumedRole(CredentialProvider):
    """The only credential source of an account's botocore session: its refreshable credentials."""

    METHOD = "aws-support-bot-assume-role"

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> Credentials:
        return self._credentials


class AccountSessions:
    """One boto3 Session per account; the bot's own session for the account without a role."""

    def __init__(
        self,
        *,
        base_session: boto3.session.Session | None = None,
        region: str = "us-east-1",
        sts_endpoint_url: str | None = None,
        duration_seconds: int = DEFAULT_DURATION_SECONDS,
        time_fetcher: Callable[[], datetime] = _local_now,
    ) -> None:
        self._base = base_session or new_session()
        self._region = region
        self._sts_endpoint_url = sts_endpoint_url
        self._duration = duration_seconds
        # botocore asks this clock how close expiry is; tests pass the sandbox's clock.
        self._time_fetcher = time_fetcher
        self._sts: Any = None
        self._sessions: dict[str, boto3.session.Session] = {}
        self._lock = threading.Lock()
        self._assumed: Counter[str] = Counter()

    @property
    def base_session(self) -> boto3.session.Session:
        return self._base

    def session(self, account: Account) -> boto3.session.Session:
        """The account's session; nothing is asked of STS until its first call."""
        if account.role_arn is None:
            return self._base
        with self._lock:
            session = self._sessions.get(account.alias)
            if session is None:
                session = self._sessions[account.alias] = self._new_session(account)
            return session

    def verify(self, account: Account) -> None:
        """Assume the account's role now if it is not assumed yet; AccountUnreachable when that fails."""
        credentials = self.session(account).get_credentials()
        if credentials is None:
            raise AccountUnreachable(account.alias, account.id, code="NoCredentials")
        credentials.get_frozen_credentials()

    def assume(self, account: Account) -> dict[str, str]:
        """botocore's refresh function: fresh credentials for the account, as botocore's metadata."""
        if account.role_arn is None:
            raise ValueError(f"account {account.alias} has no role to assume")
        params: dict[str, Any] = {
            "RoleArn": account.role_arn,
            "RoleSessionName": ROLE_SESSION_NAME,
            "DurationSeconds": self._duration,
        }
        if account.external_id:
            params["ExternalId"] = account.external_id
        try:
            answer = self._sts_client().assume_role(**params)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            code, reason = aws_problem(exc)
            retryable = code in RETRYABLE_CODES or code == "Unreachable"
            logger.warning(
                "account %s (%s): AssumeRole of %s failed: %s", account.alias, account.id, account.role_arn, code
            )
            raise AccountUnreachable(account.alias, account.id, code=code, reason=reason, retryable=retryable) from exc
        credentials = answer["Credentials"]
        with self._lock:
            self._assumed[account.alias] += 1
        logger.debug("account %s: role assumed until %s", account.alias, credentials["Expiration"])
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    def assumed(self, alias: str) -> int:
        """How many times the account's role was assumed (first use plus every refresh)."""
        with self._lock:
            return self._assumed[alias]

    def _new_session(self, account: Account) -> boto3.session.Session:
        # The process's one loader: each service model is read and kept in memory once, not once per account.
        core = new_botocore_session()
        credentials = DeferredRefreshableCredentials(
            refresh_using=partial(self.assume, account), method=_AssumedRole.METHOD, time_fetcher=self._time_fetcher
        )
        core.register_component("credential_provider", CredentialResolver(providers=[_AssumedRole(credentials)]))
        return boto3.session.Session(botocore_session=core, region_name=self._region)

    def _sts_client(self) -> Any:
        with self._lock:
            if self._sts is None:
                config = Config(
                    region_name=self._region,
                    retries={"mode": "standard", "total_max_attempts": 3},
                    connect_timeout=5,
                    read_timeout=10,
                )
                # endpoint_url None: botocore honours AWS_ENDPOINT_URL_STS itself.
                self._sts = self._base.client("sts", config=config, endpoint_url=self._sts_endpoint_url)
            return self._sts


def account_gateways(
    accounts: Iterable[Account],
    sessions: AccountSessions,
    *,
    region: str = "us-east-1",
    endpoint_url: str | None = None,
    max_attempts: int | None = None,
) -> dict[str, SupportGateway]:
    """alias -> a SupportGateway acting in that account through its session (endpoint_url None:
    botocore honours AWS_ENDPOINT_URL_SUPPORT, as for the one-account bot)."""
    extra: dict[str, Any] = {} if max_attempts is None else {"max_attempts": max_attempts}
    return {
        account.alias: SupportGateway(
            session=sessions.session(account), endpoint_url=endpoint_url, region=region, **extra
        )
        for account in accounts
    }

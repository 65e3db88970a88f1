"""What can go wrong with an account as a whole; each names the message a person sees."""

from __future__ import annotations

from typing import Any

from bot.errors import AwsError, NotAllowed, UserInputError


class AccountUnreachable(AwsError):
    """The bot cannot act in this account now (AssumeRole denied, STS unreachable, …). Raised per
    account: whoever loops over accounts catches it and carries on with the others."""

    key = "account_unreachable"

    def __init__(self, alias: str, account_id: str, *, code: str, reason: str = "", retryable: bool = False) -> None:
        super().__init__(code=code, retryable=retryable, alias=alias, account_id=account_id, reason=reason)
        self.alias = alias
        self.account_id = account_id
        self.reason = reason


class UnknownAccount(UserInputError):
    key = "account_unknown"

    def __init__(self, alias: str, known: list[str]) -> None:
        super().__init__(alias=alias, known=known)


class AccountNotAllowed(NotAllowed):
    key = "account_not_in_channel"

    def __init__(self, alias: str, account_id: str, **params: Any) -> None:
        super().__init__(alias=alias, account_id=account_id, **params)


class AccountsUnreachable(AwsError):
    """Every account asked could not be: each is named with its reason (one message, not the first error)."""

    key = "accounts_unreachable"

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        accounts = [{"alias": alias, "id": account_id, "code": code} for alias, account_id, code in problems]
        retryable = bool(accounts) and all(a["code"] in RETRYABLE_CODES for a in accounts)
        code = accounts[0]["code"] if accounts else "Unreachable"
        super().__init__(code=code, retryable=retryable, accounts=accounts)
        self.problems = list(problems)


RETRYABLE_CODES = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException", "Unreachable"})

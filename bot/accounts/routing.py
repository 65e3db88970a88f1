"""One gateway per account behind the one the domain already speaks to.

The case service, the sync and the digests call a SupportGateway; with several accounts they get an
AccountGateways instead, which sends each call to the account it concerns: a case ID names its
account (`case-<account id>-…`, as AWS's do), `<alias>:<display ID>` names it outright, and a bare
display ID is looked for account by account. Calls that name no case (options, Trusted Advisor,
attachments) go to the default account, the first one served.

What an account answered last (AssumeRole denied, no support plan, throttled) is kept per account,
logged once when it changes, and shown by `accounts` and /healthz.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TypeVar

from bot.accounts.config import Account
from bot.accounts.directory import AccountDirectory
from bot.accounts.errors import AccountNotAllowed, AccountUnreachable
from bot.aws.gateway import SupportGateway, parse_case_ref
from bot.domain import Attachment, Case, Communication, NewCase
from bot.errors import AwsError, CaseNotFound, UserInputError
from bot.pool import map_in_callers_context

logger = logging.getLogger(__name__)

T = TypeVar("T")
CASE_ACCOUNT = re.compile(r"^case-(\d{12})-")
ALIASED_REF = re.compile(r"^([a-z0-9][a-z0-9-]{0,31}):([0-9]+)$")
PARALLEL_ACCOUNTS = 4  # accounts asked at once: a slow account must not hold up the others
# Codes that say the account as a whole is out of reach, not that one case is wrong.
ACCOUNT_WIDE = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "SubscriptionRequiredException",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "Unreachable",
        "NoCredentials",
    }
)


@dataclass(frozen=True)
class AccountProblem:
    code: str
    reason: str
    since: float


class AccountGateways(SupportGateway):
    """alias -> SupportGateway, routed by case. Thread-safe; holds no state of its own beyond problems."""

    def __init__(self, directory: AccountDirectory, gateways: Mapping[str, SupportGateway]) -> None:
        # Deliberately not SupportGateway.__init__: this makes no client of its own. What the domain
        # reads of a gateway besides its methods (client, option cache) is the default account's.
        self.directory = directory
        self.gateways = dict(gateways)
        self.default = self.gateways[directory.accounts[0].alias]
        self.client = self.default.client
        self._single = self.default._single
        self._options = self.default._options
        self._session = self.default._session
        self._region = self.default._region
        self._problems: dict[str, AccountProblem] = {}
        self._problems_lock = threading.Lock()

    # Which account ---------------------------------------------------------------------

    @property
    def calls(self) -> int:
        return sum(gateway.calls for gateway in self.gateways.values())

    @calls.setter
    def calls(self, value: int) -> None:  # SupportGateway.__init__'s counter; the sum is read-only
        pass

    def account_of(self, case_id: str) -> Account:
        """The account a case ID names; the default one for IDs that name none (old or foreign)."""
        match = CASE_ACCOUNT.match(case_id)
        found = self.directory.by_id(match.group(1)) if match else None
        return found or self.directory.accounts[0]

    def case_account(self, case_id: str) -> tuple[str, str]:
        account = self.account_of(case_id)
        return account.alias, self.directory.account_id(account)

    def alias_of(self, case_id: str) -> str:
        return self.account_of(case_id).alias

    def gateway(self, alias: str) -> SupportGateway:
        return self.gateways[self.directory.require(alias).alias]

    def in_account(self, alias: str) -> SupportGateway:
        return self.gateway(alias) if alias else self.default

    def for_case(self, case_id: str) -> SupportGateway:
        return self.gateways[self.account_of(case_id).alias]

    def serving(self, account_id: str) -> SupportGateway | None:
        """This router for an event of a served account (its `account`); None when no served account has
        that ID, so that an organisation's other accounts cost no call. While an account's ID is still
        unknown (STS unreachable) the ID may be that account's: the router too, as for an event naming
        no account. The router sends each call to the account its case ID names."""
        if not account_id.strip():
            return self
        if self.directory.by_id(account_id) is not None:
            return self  # routed by the case ID, which names this account, and its problems noted
        # by_id has just asked STS for the accounts the file gives no ID: one it could not tell may be this one.
        return None if self.directory.every_id_known() else self

    def stamp(self, case: Case, account: Account) -> Case:
        """The case, naming its account (alias and ID) for the card and every case line."""
        return replace(case, account=account.alias, account_id=self.directory.account_id(account))

    # Problems per account --------------------------------------------------------------

    def problems(self) -> dict[str, AccountProblem]:
        with self._problems_lock:
            return dict(self._problems)

    def _call(self, account: Account, call: Callable[[SupportGateway], T]) -> T:
        try:
            result = call(self.gateways[account.alias])
        except AwsError as error:
            if isinstance(error, AccountUnreachable) or error.code in ACCOUNT_WIDE:
                self._note_problem(account, error)
            raise
        self._clear_problem(account)
        return result

    def _note_problem(self, account: Account, error: AwsError) -> None:
        reason = error.reason if isinstance(error, AccountUnreachable) else ""
        with self._problems_lock:
            known = self._problems.get(account.alias)
            if known is not None and known.code == error.code:
                return
            self._problems[account.alias] = AccountProblem(error.code, reason, time.time())
        logger.warning("account %s (%s) cannot be used: %s %s", account.alias, account.id, error.code, reason)

    def _clear_problem(self, account: Account) -> None:
        with self._problems_lock:
            if self._problems.pop(account.alias, None) is None:
                return
        logger.info("account %s (%s) answers again", account.alias, account.id)

    # Finding a case --------------------------------------------------------------------

    def find_case(self, ref: str, channel: str, *, include_communications: bool = False) -> Case:
        """The case `ref` names, as `channel` may see it: its account must be usable there.

        A bare display ID is looked for in the channel's default account first, then in every
        account the channel may use; an account that cannot be reached is skipped.
        """
        ref = ref.strip()
        named = parse_account_ref(ref)
        if named:
            account = self.directory.check_usable(channel, self.directory.require(named[0]))
            return self._get(account, named[1], include_communications)
        query = parse_case_ref(ref)
        if "caseIdList" in query:
            return self._get(self.directory.check_usable(channel, self.account_of(ref)), ref, include_communications)
        default = self.directory.default_for(channel)
        if default is None:
            # No account may be used here: say which one the bot would have used, and why not.
            first = self.directory.accounts[0]
            raise AccountNotAllowed(first.alias, self.directory.account_id(first))
        order = [default] + [a for a in self.directory.usable_in(channel) if a.alias != default.alias]
        unreachable: AwsError | None = None
        for account in order:
            try:
                return self._get(account, ref, include_communications)
            except CaseNotFound:
                continue
            except AwsError as error:
                # Any account's failure (an endpoint answering 5xx too) leaves the others to look in.
                unreachable = unreachable or error
                continue
        if unreachable is not None:
            raise unreachable
        raise CaseNotFound("case_not_found_here", code="CaseIdNotFound", ref=ref, aliases=[a.alias for a in order])

    def _get(self, account: Account, ref: str, include_communications: bool) -> Case:
        case = self._call(account, lambda g: g.get_case(ref, include_communications=include_communications))
        return self.stamp(case, account)

    # SupportGateway, routed --------------------------------------------------------------

    def get_case(self, ref: str, *, include_communications: bool = True) -> Case:
        named = parse_account_ref(ref)
        if named:
            return self._get(self.directory.require(named[0]), named[1], include_communications)
        query = parse_case_ref(ref)
        if "caseIdList" in query:
            return self._get(self.account_of(ref), ref, include_communications)
        for account in self.directory.accounts:
            try:
                return self._get(account, ref, include_communications)
            except CaseNotFound:
                continue
        raise CaseNotFound(code="CaseIdNotFound", ref=ref)

    def describe_cases(self, case_ids: Iterable[str], *, include_communications: bool = True) -> list[Case]:
        """Each account's cases from that account (ceil(N/100) calls each), the accounts asked at once."""
        groups: dict[str, list[str]] = {}
        for case_id in case_ids:
            groups.setdefault(self.alias_of(case_id), []).append(case_id)

        def one(alias: str) -> list[Case]:
            account = self.directory.require(alias)
            ids = groups[alias]
            cases = self._call(account, lambda g: g.describe_cases(ids, include_communications=include_communications))
            return [self.stamp(case, account) for case in cases]

        if len(groups) <= 1:
            return [case for alias in groups for case in one(alias)]
        with ThreadPoolExecutor(max_workers=min(PARALLEL_ACCOUNTS, len(groups))) as pool:
            return [case for cases in map_in_callers_context(pool, one, list(groups)) for case in cases]

    def list_cases(
        self, *, include_resolved: bool = False, after_time: str | None = None, limit: int | None = None
    ) -> list[Case]:
        """Every reachable account's cases, newest first; an account that cannot be reached is left out
        (and reported in `accounts`), never failing the others."""
        return self.list_cases_in(
            self.directory.accounts, include_resolved=include_resolved, after_time=after_time, limit=limit
        )

    def list_cases_in(
        self,
        accounts: Iterable[Account],
        *,
        include_resolved: bool = False,
        after_time: str | None = None,
        limit: int | None = None,
        failed: list[tuple[Account, AwsError]] | None = None,
        tolerate: bool = False,
    ) -> list[Case]:
        """`failed` collects the accounts left out because they cannot be reached; `tolerate` leaves
        out even the only account asked (the caller names it instead of failing)."""
        accounts = list(accounts)

        def one(account: Account) -> list[Case]:
            try:
                cases = self._call(
                    account,
                    lambda g: g.list_cases(include_resolved=include_resolved, after_time=after_time, limit=limit),
                )
            except AwsError as error:
                # With several accounts asked, any failure is that account's own (an endpoint answering
                # 5xx too): it is named, and the others answer.
                account_wide = isinstance(error, AccountUnreachable) or error.code in ACCOUNT_WIDE
                if len(accounts) == 1 and not (account_wide and tolerate):
                    raise
                if failed is not None:
                    failed.append((account, error))
                else:
                    logger.warning("cases of account %s left out: %s", account.alias, error)
                return []
            return [self.stamp(case, account) for case in cases]

        if not accounts:
            return []
        with ThreadPoolExecutor(max_workers=min(PARALLEL_ACCOUNTS, len(accounts))) as pool:
            found = [case for cases in map_in_callers_context(pool, one, accounts) for case in cases]
        found.sort(key=lambda c: c.time_created, reverse=True)
        return found[:limit] if limit is not None else found

    def communications(
        self, case_id: str, *, after_time: str | None = None, limit: int | None = None
    ) -> list[Communication]:
        account = self.account_of(case_id)
        return self._call(account, lambda g: g.communications(case_id, after_time=after_time, limit=limit))

    def add_communication(
        self,
        case_id: str,
        body: str,
        *,
        cc_email_addresses: Iterable[str] = (),
        attachment_set_id: str | None = None,
    ) -> None:
        account = self.account_of(case_id)
        self._call(
            account,
            lambda g: g.add_communication(
                case_id, body, cc_email_addresses=cc_email_addresses, attachment_set_id=attachment_set_id
            ),
        )

    def resolve_case(self, case_id: str) -> tuple[str, str]:
        return self._call(self.account_of(case_id), lambda g: g.resolve_case(case_id))

    def create_case(self, new_case: NewCase) -> str:
        account = self.directory.require(new_case.account) if new_case.account else self.directory.accounts[0]
        return self._call(account, lambda g: g.create_case(new_case))

    def add_attachments(self, attachments: Iterable[Attachment], attachment_set_id: str | None = None) -> str:
        return self.default.add_attachments(attachments, attachment_set_id)

    def attachment(self, attachment_id: str) -> Attachment:
        # An attachment ID names no account: the default first, then the others.
        last: AwsError | None = None
        for account in self.directory.accounts:
            try:
                return self.gateways[account.alias].attachment(attachment_id)
            except AwsError as error:
                last = error
        assert last is not None
        raise last

    def account_id(self) -> str:
        return self.directory.account_id(self.directory.accounts[0])

    def reachable(self, account: Account) -> bool:
        """Whether the account answered its last call (unknown counts as reachable)."""
        return account.alias not in self.problems()

    def probe(self, account: Account) -> AccountProblem | None:
        """Ask the account now: one DescribeCases page, the call the poller depends on (not a cached answer)."""
        try:
            self._call(account, lambda g: g.list_cases(limit=1))
        except AwsError as error:
            if isinstance(error, AccountUnreachable) or error.code in ACCOUNT_WIDE:
                return self.problems().get(account.alias) or AccountProblem(error.code, "", time.time())
        return self.problems().get(account.alias)


def parse_account_ref(text: str) -> tuple[str, str] | None:
    """(alias, display ID) of `<alias>:<display ID>`; None for any other form."""
    match = ALIASED_REF.match(text.strip().lower())
    return (match.group(1), match.group(2)) if match else None


def check_ref_syntax(text: str) -> None:
    """A case ID, a display ID or `<alias>:<display ID>`; UserInputError otherwise (no AWS call)."""
    if parse_account_ref(text) is None:
        parse_case_ref(text)


__all__ = [
    "AccountGateways",
    "AccountProblem",
    "UserInputError",
    "check_ref_syntax",
    "parse_account_ref",
]

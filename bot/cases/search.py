"""`search`: cases whose subject, display ID, service or category hold every word, across the accounts
a channel may use, newest first.

AWS keeps case data 12 months and DescribeCases filters only by time and resolution, so each account's
cases since `afterTime` are listed (paged, the accounts asked at once by the routing gateway) and
matched here. An account that cannot be reached is named, never failing the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from bot.accounts.config import Account
from bot.accounts.directory import AccountDirectory
from bot.accounts.errors import AccountNotAllowed
from bot.accounts.routing import AccountGateways
from bot.aws.gateway import SupportGateway
from bot.domain import Case
from bot.errors import AwsError, UserInputError

USAGE = "/aws-support search <words…> [status:open|resolved|any] [since:YYYY-MM-DD] [account:<alias>|all]"
STATUSES = ("open", "resolved", "any")
KEPT_DAYS = 365  # AWS Support keeps case data 12 months
MAX_QUERY = 500  # the query travels in the Next button's value (at most 2,000 characters)
PAGE_SIZE = 5


@dataclass(frozen=True)
class SearchQuery:
    words: tuple[str, ...]
    status: str = "any"
    since: date | None = None
    account: str = ""  # an alias, "all", or "" (every account the channel may use)

    def after_time(self, today: date) -> str:
        start = self.since or today - timedelta(days=KEPT_DAYS)
        return datetime(start.year, start.month, start.day, tzinfo=UTC).isoformat()


@dataclass
class SearchResult:
    cases: list[Case]
    unreachable: list[tuple[str, str, str]] = field(default_factory=list)  # (alias, account ID, AWS code)


def parse_search(text: str, *, today: date | None = None) -> SearchQuery:
    """The words after `search`; a clear usage answer for anything that is not understood."""
    today = today or datetime.now(UTC).date()
    if len(text) > MAX_QUERY:
        raise UserInputError("search_usage", problem="too_long", limit=MAX_QUERY, usage=USAGE)
    words: list[str] = []
    status, since, account = "any", None, ""
    for token in text.split():
        name, colon, value = token.partition(":")
        name = name.lower()
        if not colon or name not in ("status", "since", "account"):
            words.append(token.lower())
        elif name == "status":
            if value.lower() not in STATUSES:
                raise UserInputError("search_usage", problem="status", value=value, usage=USAGE)
            status = value.lower()
        elif name == "since":
            try:
                since = date.fromisoformat(value)
            except ValueError:
                raise UserInputError("search_usage", problem="since", value=value, usage=USAGE) from None
            if since > today:
                raise UserInputError("search_usage", problem="since_future", value=value, usage=USAGE)
        else:
            if not value:
                raise UserInputError("search_usage", problem="account", value=value, usage=USAGE)
            account = value.lower()
    if not words:
        raise UserInputError("search_usage", problem="no_words", usage=USAGE)
    return SearchQuery(tuple(words), status, since, account)


def accounts_to_search(directory: AccountDirectory, channel: str, query: SearchQuery) -> list[Account]:
    """The accounts the query names, as the channel may use them (refused by name otherwise)."""
    if query.account and query.account != "all":
        return [directory.check_usable(channel, directory.require(query.account))]
    usable = directory.usable_in(channel)
    if not usable:
        first = directory.accounts[0]
        raise AccountNotAllowed(first.alias, directory.account_id(first))
    return usable


def matches(case: Case, words: Sequence[str], names: Callable[[str, str], tuple[str, str]]) -> bool:
    service_name, category_name = names(case.service_code, case.category_code)
    haystack = " ".join(
        (case.subject, case.display_id, case.service_code, case.category_code, service_name, category_name)
    ).lower()
    return all(word in haystack for word in words)


def search_cases(
    gateway: SupportGateway,
    directory: AccountDirectory,
    channel: str,
    query: SearchQuery,
    *,
    names: Callable[[str, str], tuple[str, str]],
    today: date | None = None,
) -> SearchResult:
    accounts = accounts_to_search(directory, channel, query)
    after = query.after_time(today or datetime.now(UTC).date())
    include_resolved = query.status != "open"
    result = SearchResult(cases=[])
    if isinstance(gateway, AccountGateways):
        failed: list[tuple[Account, AwsError]] = []
        found = gateway.list_cases_in(
            accounts, include_resolved=include_resolved, after_time=after, failed=failed, tolerate=True
        )
        result.unreachable = [(a.alias, directory.account_id(a), e.code or e.key) for a, e in failed]
    else:
        found = gateway.list_cases(include_resolved=include_resolved, after_time=after)
    if query.status == "resolved":
        found = [case for case in found if case.is_resolved]
    elif query.status == "open":
        found = [case for case in found if not case.is_resolved]
    found = [case for case in found if matches(case, query.words, names)]
    found.sort(key=lambda c: c.time_created, reverse=True)
    result.cases = found
    return result

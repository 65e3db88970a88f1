"""Domain records shared by the services: what AWS Support tells us, in our own terms."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

RESOLVED_STATUSES = frozenset({"resolved"})
HIGH_SEVERITIES = frozenset({"high", "urgent", "critical"})


def parse_aws_time(value: str | None) -> datetime | None:
    """AWS Support returns ISO 8601 times, with or without fractions and a zone."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class AttachmentRef:
    attachment_id: str
    file_name: str


@dataclass(frozen=True)
class Attachment:
    file_name: str
    data: bytes


@dataclass(frozen=True)
class Communication:
    case_id: str
    body: str
    submitted_by: str
    time_created: str
    attachments: tuple[AttachmentRef, ...] = ()

    @property
    def created_at(self) -> datetime | None:
        return parse_aws_time(self.time_created)

    @property
    def key(self) -> str:
        """Communications have no ID in the API; this is stable across calls."""
        raw = "\x1f".join((self.case_id, self.time_created, self.submitted_by, self.body))
        return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Case:
    case_id: str
    display_id: str
    subject: str
    status: str
    service_code: str
    category_code: str
    severity_code: str
    submitted_by: str
    time_created: str
    language: str = "en"
    cc_email_addresses: tuple[str, ...] = ()
    recent_communications: tuple[Communication, ...] = ()
    # DescribeCases says whether more communications exist than the recent ones it returned
    more_communications: bool = False
    # With several accounts: the account's alias and ID (bot/accounts/routing.py); "" with one.
    account: str = ""
    account_id: str = ""
    # The Support Center of the case's partition (support_console); "" for the commercial one.
    console: str = ""

    @property
    def is_resolved(self) -> bool:
        return self.status in RESOLVED_STATUSES

    @property
    def console_url(self) -> str:
        # Quoted: a display ID is AWS's text, and inside a mrkdwn link a | or > would end the URL.
        return f"{self.console or COMMERCIAL_SUPPORT_CONSOLE}#/case/?displayId={quote(self.display_id, safe='')}"


COMMERCIAL_SUPPORT_CONSOLE = "https://support.console.aws.amazon.com/support/home"


def support_console(region: str) -> str:
    """The Support Center people of the region's partition sign in to: GovCloud and China have their own."""
    if region.startswith("us-gov-"):
        return f"https://console.amazonaws-us-gov.com/support/home?region={quote(region, safe='')}"
    if region.startswith("cn-"):
        return f"https://console.amazonaws.cn/support/home?region={quote(region, safe='')}"
    return COMMERCIAL_SUPPORT_CONSOLE


# Slack's limit for an option's value; the codes DescribeServices answers with have no limit in the model.
OPTION_VALUE_MAX = 150
OPTION_KEY_PREFIX = "sha256:"


def option_value(code: str) -> str:
    """What a select offers for an AWS code: the code itself, or a stable short key for a long one."""
    if len(code) <= OPTION_VALUE_MAX:
        return code
    return OPTION_KEY_PREFIX + hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True)
class Category:
    code: str
    name: str

    @property
    def option_value(self) -> str:
        return option_value(self.code)


@dataclass(frozen=True)
class Service:
    code: str
    name: str
    categories: tuple[Category, ...] = field(default_factory=tuple)

    @property
    def option_value(self) -> str:
        return option_value(self.code)

    def category(self, value: str) -> Category | None:
        """The category a select's value names (its code, or the short key of a long code)."""
        return next((c for c in self.categories if value in (c.code, c.option_value)), None)


@dataclass(frozen=True)
class Severity:
    code: str
    name: str

    @property
    def option_value(self) -> str:
        return option_value(self.code)


@dataclass(frozen=True)
class NewCase:
    """What a person asked for when opening a case."""

    subject: str
    service_code: str
    category_code: str
    severity_code: str
    body: str
    issue_type: str = "technical"
    language: str = "en"
    cc_email_addresses: tuple[str, ...] = ()
    attachment_set_id: str | None = None
    # The alias of the account to open it in ("": the default one).
    account: str = ""


@dataclass(frozen=True)
class TrustedAdvisorCheck:
    check_id: str
    name: str
    description: str
    category: str
    metadata: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckSummary:
    check_id: str
    status: str  # ok | warning | error | not_available
    timestamp: str = ""
    has_flagged_resources: bool = False
    resources_processed: int = 0
    resources_flagged: int = 0
    resources_ignored: int = 0
    resources_suppressed: int = 0
    estimated_monthly_savings: float | None = None
    estimated_percent_monthly_savings: float | None = None


@dataclass(frozen=True)
class FlaggedResource:
    resource_id: str
    status: str
    region: str
    is_suppressed: bool
    metadata: tuple[str | None, ...] = ()


@dataclass(frozen=True)
class TrustedAdvisorResult:
    """One check's flagged resources (DescribeTrustedAdvisorCheckResult); not bot/check.py's startup probe."""

    check_id: str
    status: str
    timestamp: str
    flagged_resources: tuple[FlaggedResource, ...] = ()


@dataclass(frozen=True)
class RefreshStatus:
    check_id: str
    status: str  # none | enqueued | processing | success | abandoned
    millis_until_next_refreshable: int = 0

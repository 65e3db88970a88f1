"""AWS Support's response documents -> the bot's domain records.

botocore's model marks nearly every output member optional, so nothing here indexes a response
with []: a member the bot can do without gets a default, an entry without its identifier is left
out, and a member it cannot do without becomes a clear AwsError (errors.incomplete_answer).
"""

from __future__ import annotations

import logging
from typing import Any

from bot.aws.errors import incomplete_answer
from bot.domain import (
    AttachmentRef,
    Case,
    Category,
    CheckSummary,
    Communication,
    FlaggedResource,
    RefreshStatus,
    Service,
    Severity,
    TrustedAdvisorCheck,
    TrustedAdvisorResult,
)

logger = logging.getLogger(__name__)


def member(response: dict[str, Any], name: str, operation: str) -> Any:
    """A member the caller cannot do without."""
    value = response.get(name)
    if value is None:
        raise incomplete_answer(operation, name)
    return value


def entries(response: dict[str, Any], name: str, operation: str) -> list[dict[str, Any]]:
    """A list member whose entries are structures; what is not a structure is left out."""
    return [entry for entry in member(response, name, operation) if isinstance(entry, dict)]


def communication(raw: dict[str, Any], case_id: str = "") -> Communication:
    return Communication(
        case_id=raw.get("caseId") or case_id,
        body=raw.get("body") or "",
        submitted_by=raw.get("submittedBy") or "",
        time_created=raw.get("timeCreated") or "",
        attachments=tuple(
            AttachmentRef(a.get("attachmentId") or "", a.get("fileName") or "")
            for a in raw.get("attachmentSet") or []
            if a.get("attachmentId")
        ),
    )


def case(raw: dict[str, Any], console: str = "") -> Case | None:
    """None for a case without its ID: nothing could follow, link or answer it. `console`: Case.console."""
    case_id = raw.get("caseId")
    if not case_id:
        logger.warning("DescribeCases returned a case without caseId (display ID %r); left out", raw.get("displayId"))
        return None
    recent = raw.get("recentCommunications") or {}
    return Case(
        case_id=case_id,
        display_id=raw.get("displayId") or "",
        subject=raw.get("subject") or "",
        status=raw.get("status") or "",
        service_code=raw.get("serviceCode") or "",
        category_code=raw.get("categoryCode") or "",
        severity_code=raw.get("severityCode") or "",
        submitted_by=raw.get("submittedBy") or "",
        time_created=raw.get("timeCreated") or "",
        language=raw.get("language") or "en",
        cc_email_addresses=tuple(raw.get("ccEmailAddresses") or ()),
        recent_communications=tuple(communication(c, case_id) for c in recent.get("communications") or []),
        more_communications=bool(recent.get("nextToken")),
        console=console,
    )


def cases(page: dict[str, Any], console: str = "") -> list[Case]:
    found = (case(raw, console) for raw in page.get("cases") or [])
    return [c for c in found if c is not None]


def service(raw: dict[str, Any]) -> Service | None:
    code = raw.get("code")
    if not code:
        return None
    categories = tuple(
        Category(c["code"], c.get("name") or c["code"]) for c in raw.get("categories") or [] if c.get("code")
    )
    return Service(code=code, name=raw.get("name") or code, categories=categories)


def severity(raw: dict[str, Any]) -> Severity | None:
    code = raw.get("code")
    return Severity(code, raw.get("name") or code) if code else None


def check(raw: dict[str, Any]) -> TrustedAdvisorCheck | None:
    check_id = raw.get("id")
    if not check_id:
        return None  # a malformed entry must not take the whole digest down
    return TrustedAdvisorCheck(
        check_id=check_id,
        name=raw.get("name") or check_id,
        description=raw.get("description") or "",
        category=raw.get("category") or "other",
        metadata=tuple(raw.get("metadata") or ()),
    )


def summary(raw: dict[str, Any]) -> CheckSummary:
    resources = raw.get("resourcesSummary") or {}
    cost = (raw.get("categorySpecificSummary") or {}).get("costOptimizing") or {}
    return CheckSummary(
        check_id=raw.get("checkId") or "",
        status=raw.get("status") or "not_available",
        timestamp=raw.get("timestamp") or "",
        has_flagged_resources=bool(raw.get("hasFlaggedResources")),
        resources_processed=int(resources.get("resourcesProcessed") or 0),
        resources_flagged=int(resources.get("resourcesFlagged") or 0),
        resources_ignored=int(resources.get("resourcesIgnored") or 0),
        resources_suppressed=int(resources.get("resourcesSuppressed") or 0),
        estimated_monthly_savings=cost.get("estimatedMonthlySavings"),
        estimated_percent_monthly_savings=cost.get("estimatedPercentMonthlySavings"),
    )


def result(raw: dict[str, Any], check_id: str) -> TrustedAdvisorResult:
    return TrustedAdvisorResult(
        check_id=raw.get("checkId") or check_id,
        status=raw.get("status") or "not_available",
        timestamp=raw.get("timestamp") or "",
        flagged_resources=tuple(
            FlaggedResource(
                resource_id=r.get("resourceId") or "",
                status=r.get("status") or "",
                region=r.get("region") or "",
                is_suppressed=bool(r.get("isSuppressed")),
                metadata=tuple(r.get("metadata") or ()),
            )
            for r in raw.get("flaggedResources") or []
        ),
    )


def refresh_status(raw: dict[str, Any], check_id: str = "") -> RefreshStatus:
    return RefreshStatus(
        check_id=raw.get("checkId") or check_id,
        status=raw.get("status") or "none",
        millis_until_next_refreshable=int(raw.get("millisUntilNextRefreshable") or 0),
    )

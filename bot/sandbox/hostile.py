"""Hostile but legal answers: every free-text member of an answer starts with text of the caller's choosing.

AWS Support's answers carry text that people outside the team wrote (case subjects, engineers'
replies, file names) or that AWS may change at any time (statuses, codes, names). A client must
treat all of it as data; switching this on shows whether it does (`<!channel>`, links, markup).
Identifiers (caseId, attachmentId, checkId, nextToken) and times stay intact, so the client can
still follow what it is shown.
"""

from __future__ import annotations

from typing import Any

CASE_TEXT = ("displayId", "subject", "status", "serviceCode", "categoryCode", "severityCode", "submittedBy", "language")
COMMUNICATION_TEXT = ("body", "submittedBy")
# Per operation: the free-text members of the answer, wherever they sit in it.
TEXT_MEMBERS: dict[str, frozenset[str]] = {
    "DescribeCases": frozenset((*CASE_TEXT, *COMMUNICATION_TEXT, "fileName", "ccEmailAddresses")),
    "DescribeCommunications": frozenset((*COMMUNICATION_TEXT, "fileName")),
    "DescribeAttachment": frozenset(("fileName",)),
    "ResolveCase": frozenset(("initialCaseStatus", "finalCaseStatus")),
    "DescribeServices": frozenset(("name",)),
    "DescribeSeverityLevels": frozenset(("name",)),
    "DescribeTrustedAdvisorChecks": frozenset(("name", "description", "category", "metadata")),
    "DescribeTrustedAdvisorCheckResult": frozenset(("region", "metadata")),
}


def disguise(operation: str, answer: Any, prefix: str) -> Any:
    """`answer` with `prefix` before every free-text member that `operation` answers with."""
    members = TEXT_MEMBERS.get(operation, frozenset())
    return _walk(answer, members, prefix, disguised=False) if members else answer


def _walk(value: Any, members: frozenset[str], prefix: str, *, disguised: bool) -> Any:
    if isinstance(value, dict):
        return {key: _walk(item, members, prefix, disguised=key in members) for key, item in value.items()}
    if isinstance(value, list):
        return [_walk(item, members, prefix, disguised=disguised) for item in value]
    if disguised and isinstance(value, str):
        return prefix + value
    return value

"""Trusted Advisor through the Support API: checks, summaries, results and refreshes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.aws import records
from bot.aws.errors import aws_errors
from bot.domain import CheckResult, CheckSummary, RefreshStatus, TrustedAdvisorCheck
from bot.errors import AwsError


class TrustedAdvisorCalls:
    """The Trusted Advisor half of SupportGateway (which supplies the boto3 client)."""

    client: Any

    def trusted_advisor_checks(self, language: str = "en") -> list[TrustedAdvisorCheck]:
        with aws_errors():
            response = self.client.describe_trusted_advisor_checks(language=language)
        found = (records.check(raw) for raw in records.entries(response, "checks", "DescribeTrustedAdvisorChecks"))
        return [c for c in found if c is not None]

    def trusted_advisor_summaries(self, check_ids: Iterable[str]) -> list[CheckSummary]:
        ids = list(check_ids)
        if not ids:
            return []
        try:
            with aws_errors():
                response = self.client.describe_trusted_advisor_check_summaries(checkIds=ids)
        except AwsError as error:
            if error.key != "aws_validation":
                raise
            if len(ids) == 1:
                return []  # a retired or unknown check has nothing to summarise
            # One such ID fails the whole call: split so the other checks are still summarised.
            middle = len(ids) // 2
            return self.trusted_advisor_summaries(ids[:middle]) + self.trusted_advisor_summaries(ids[middle:])
        operation = "DescribeTrustedAdvisorCheckSummaries"
        return [records.summary(raw) for raw in records.entries(response, "summaries", operation)]

    def trusted_advisor_result(self, check_id: str, language: str = "en") -> CheckResult:
        with aws_errors():
            response = self.client.describe_trusted_advisor_check_result(checkId=check_id, language=language)
        # No result: the check has nothing to report yet (not_available), not an error.
        return records.result(response.get("result") or {}, check_id)

    def refresh_trusted_advisor_check(self, check_id: str) -> RefreshStatus:
        with aws_errors():
            response = self.client.refresh_trusted_advisor_check(checkId=check_id)
        return records.refresh_status(records.member(response, "status", "RefreshTrustedAdvisorCheck"), check_id)

    def trusted_advisor_refresh_statuses(self, check_ids: Iterable[str]) -> list[RefreshStatus]:
        ids = list(check_ids)
        if not ids:
            return []
        with aws_errors():
            response = self.client.describe_trusted_advisor_check_refresh_statuses(checkIds=ids)
        operation = "DescribeTrustedAdvisorCheckRefreshStatuses"
        return [records.refresh_status(raw) for raw in records.entries(response, "statuses", operation)]

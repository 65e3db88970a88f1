"""The one gateway to AWS Support: boto3 in, domain records and domain errors out.

botocore does the retrying (standard mode backs off on throttling and 5xx); what still fails
becomes a BotError whose key names the message a person sees.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import boto3
import botocore.exceptions
from botocore.config import Config

from bot.ack_first import let_go_of_turn, yield_to_requests
from bot.aws import model, records
from bot.aws.errors import ERROR_KEYS, aws_errors, error_from_client_error, incomplete_answer
from bot.aws.session import new_session
from bot.aws.trusted_advisor import TrustedAdvisorCalls
from bot.domain import (
    OPTION_KEY_PREFIX,
    Attachment,
    Case,
    Communication,
    NewCase,
    Service,
    Severity,
    support_console,
)
from bot.errors import AwsError, CaseNotFound, UserInputError

__all__ = [
    "DESCRIBE_CASES_BATCH",
    "ERROR_KEYS",
    "SupportGateway",
    "aws_errors",
    "error_from_client_error",
    "parse_case_ref",
]

T = TypeVar("T")
logger = logging.getLogger(__name__)

CASE_ID_PATTERN = re.compile(r"^case-[A-Za-z0-9-]+$")
DISPLAY_ID_PATTERN = re.compile(r"^[0-9]+$")  # ASCII: \d takes any script's digits
DESCRIBE_CASES_BATCH = model.limits().case_ids_per_call
OPTIONS_TTL_SECONDS = 3600.0
SEND_ATTEMPTS = 3  # for calls that create something: resent only after throttling
RECONCILE_SKEW_SECONDS = 60


def parse_case_ref(text: str) -> dict[str, str]:
    """A case is named by its case ID (case-…) or its numeric display ID."""
    ref = text.strip()
    if CASE_ID_PATTERN.match(ref):
        return {"caseIdList": [ref]}  # type: ignore[dict-item]
    if DISPLAY_ID_PATTERN.match(ref):
        return {"displayId": ref}
    raise UserInputError("bad_case_ref", ref=ref)


def _seconds_ago(seconds: int) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Cached:
    """A value kept for a while: services and severity levels change rarely.

    Once a value is known it is always answered at once; an expired one is refreshed in the
    background, so a modal or an options request never waits on AWS within Slack's 3 s.
    """

    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._values: dict[Any, tuple[float, Any]] = {}
        self._refreshing: set[Any] = set()
        self._lock = threading.Lock()

    def get(self, key: Any, load: Callable[[], T]) -> T:
        with self._lock:
            hit = self._values.get(key)
            stale = hit is not None and time.monotonic() - hit[0] >= self._ttl
            if stale and key not in self._refreshing:
                self._refreshing.add(key)
                threading.Thread(target=self._refresh, args=(key, load), daemon=True).start()
        if hit is not None:
            return hit[1]
        value = load()
        with self._lock:
            self._values[key] = (time.monotonic(), value)
        return value

    def _refresh(self, key: Any, load: Callable[[], Any]) -> None:
        try:
            value = load()
        except AwsError as error:
            logger.warning("keeping the cached %s: refresh failed: %s", key, error)
        else:
            with self._lock:
                self._values[key] = (time.monotonic(), value)
        finally:
            with self._lock:
                self._refreshing.discard(key)


def _yield_before_parsing(**_: Any) -> None:
    """Botocore parses an AWS answer here: in an after-ack job, not while Slack's requests are answered,
    and one job at a time (bot.ack_first)."""
    yield_to_requests(handles_answer=True)


def _let_go_before_calling(**_: Any) -> None:
    """The job's next AWS call begins (signing it may first ask STS for fresh credentials), or its
    request goes on the wire: the job's turn is not needed until AWS answers."""
    let_go_of_turn()


def _let_go_before_a_retry(response: Any = None, caught_exception: Any = None, **_: Any) -> None:
    """Botocore asks after every attempt whether to retry; after a failed one it may sleep first. A
    successful answer keeps the turn it took to be parsed: the job goes on to handle what it says."""
    if caught_exception is not None or response is None or response[0].status_code >= 300:
        let_go_of_turn()


class SupportGateway(TrustedAdvisorCalls):
    """Every AWS Support call the bot makes goes through here."""

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        session: boto3.session.Session | None = None,
        max_attempts: int = 3,
    ) -> None:
        config = Config(
            region_name=region,
            # total_max_attempts counts the first try too (botocore's max_attempts counts only retries)
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            connect_timeout=5,
            read_timeout=30,
            max_pool_connections=50,
        )
        with aws_errors():
            session = session or new_session()
            self.client = session.client("support", config=config, endpoint_url=endpoint_url)
        self._session = session
        self._region = region
        self._console = support_console(region)
        self._endpoint_url = endpoint_url  # an emulator's (the sandbox, moto) serves STS there too
        # endpoint_url=None (above) lets botocore honour AWS_ENDPOINT_URL_SUPPORT itself
        # Calls that create something at AWS are never resent blindly: a 5xx or a timeout may come
        # after AWS did the work. This client tries once; _send_once retries only what AWS refused.
        self._single = session.client(
            "support", config=config.merge(Config(retries={"total_max_attempts": 1})), endpoint_url=endpoint_url
        )
        self._options = _Cached(OPTIONS_TTL_SECONDS)
        self.calls = 0  # Support API calls made, for health and benchmarks
        self._calls_lock = threading.Lock()
        for client in (self.client, self._single):
            client.meta.events.register("before-call.support", self._count_call)
            client.meta.events.register("before-parse.support", _yield_before_parsing)
            client.meta.events.register("before-call.support", _let_go_before_calling)
            client.meta.events.register("before-send.support", _let_go_before_calling)
            client.meta.events.register("needs-retry.support", _let_go_before_a_retry)

    def _count_call(self, **_: Any) -> None:
        with self._calls_lock:
            self.calls += 1

    def account_id(self) -> str:
        """The AWS account the credentials belong to, for headers; "" when STS cannot tell."""
        config = Config(region_name=self._region, connect_timeout=3, read_timeout=5, retries={"total_max_attempts": 2})
        try:
            sts = self._session.client("sts", config=config, endpoint_url=self._endpoint_url)
            return sts.get_caller_identity()["Account"]
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, KeyError):
            return ""

    def case_account(self, case_id: str) -> tuple[str, str]:
        """(alias, ID) of the account a case belongs to, for the lines that name it; ("", "") with one
        account, where nothing is named (bot/accounts/routing.py answers with several)."""
        return "", ""

    def in_account(self, alias: str) -> SupportGateway:
        """The gateway of the account `alias` names ("" the default); with one account, this one."""
        return self

    def for_case(self, case_id: str) -> SupportGateway:
        """The gateway of the account a case ID names; with one account, this one."""
        return self

    def find_case(self, ref: str, channel: str, *, include_communications: bool = False) -> Case:
        """The case `ref` names as `channel` may see it; with one account every channel sees every case."""
        return self.get_case(ref, include_communications=include_communications)

    # Cases -------------------------------------------------------------------------------

    def create_case(self, new_case: NewCase) -> str:
        new_case = self._with_aws_codes(new_case)
        params: dict[str, Any] = {
            "subject": new_case.subject,
            "serviceCode": new_case.service_code,
            "categoryCode": new_case.category_code,
            "severityCode": new_case.severity_code,
            "communicationBody": new_case.body,
            "issueType": new_case.issue_type,
            "language": new_case.language,
        }
        if new_case.cc_email_addresses:
            params["ccEmailAddresses"] = list(new_case.cc_email_addresses)
        if new_case.attachment_set_id:
            params["attachmentSetId"] = new_case.attachment_set_id
        # CreateCase has no idempotency token, and a subject is no identity: after a 5xx, a timeout or
        # an answer without its caseId, only the caller can tell its case from another's (the intake
        # looks for its reference line in the opening body), so the error goes to it as it is.
        response = self._send_once(lambda: self._single.create_case(**params))
        case_id = response.get("caseId")
        if not case_id:
            # AWS most likely opened it: worth another try, which finds it by its reference first.
            raise incomplete_answer("CreateCase", "caseId", retryable=True)
        return str(case_id)

    def _with_aws_codes(self, new_case: NewCase) -> NewCase:
        """The form offered long codes by short keys (Slack's options stop at 150 characters): AWS wants codes."""
        chosen = (new_case.service_code, new_case.category_code, new_case.severity_code)
        if not any(value.startswith(OPTION_KEY_PREFIX) for value in chosen):
            return new_case
        service = next((s for s in self.services() if new_case.service_code in (s.code, s.option_value)), None)
        category = service.category(new_case.category_code) if service else None
        levels = self.severity_levels()
        severity = next((lv for lv in levels if new_case.severity_code in (lv.code, lv.option_value)), None)
        return dataclasses.replace(
            new_case,
            service_code=service.code if service else new_case.service_code,
            category_code=category.code if category else new_case.category_code,
            severity_code=severity.code if severity else new_case.severity_code,
        )

    def get_case(self, ref: str, *, include_communications: bool = True) -> Case:
        """One case by case ID or display ID, resolved or not."""
        query = parse_case_ref(ref)
        with aws_errors(ref):
            response = self.client.describe_cases(
                **query, includeResolvedCases=True, includeCommunications=include_communications
            )
        found = response.get("cases") or []
        if not found:
            raise CaseNotFound(code="CaseIdNotFound", ref=ref)
        case = records.case(found[0], self._console)
        if case is None:
            raise incomplete_answer("DescribeCases", "caseId")
        return case

    def describe_cases(self, case_ids: Iterable[str], *, include_communications: bool = True) -> list[Case]:
        """Many cases, 100 IDs a call, resolved included; unknown IDs are left out, not fatal."""
        found: list[Case] = []
        for batch in _chunks(list(case_ids), DESCRIBE_CASES_BATCH):
            found.extend(self._describe_batch(batch, include_communications))
        return found

    def _describe_batch(self, batch: list[str], include_communications: bool) -> list[Case]:
        pages = self.client.get_paginator("describe_cases").paginate(
            caseIdList=batch,
            includeResolvedCases=True,
            includeCommunications=include_communications,
            # AWS does not document its default page size: ask for a whole batch per call.
            PaginationConfig={"PageSize": DESCRIBE_CASES_BATCH},
        )
        try:
            with aws_errors():
                return [case for page in pages for case in records.cases(page, self._console)]
        except CaseNotFound:
            if len(batch) == 1:
                return []
            # One unknown ID fails the whole call: split so the others are still followed.
            middle = len(batch) // 2
            return self._describe_batch(batch[:middle], include_communications) + self._describe_batch(
                batch[middle:], include_communications
            )

    def list_cases(
        self, *, include_resolved: bool = False, after_time: str | None = None, limit: int | None = None
    ) -> list[Case]:
        """The account's cases, newest first (DescribeCases without IDs, paged)."""
        params: dict[str, Any] = {"includeResolvedCases": include_resolved, "includeCommunications": False}
        if after_time:
            params["afterTime"] = after_time
        cases: list[Case] = []
        with aws_errors():
            for page in self.client.get_paginator("describe_cases").paginate(**params):
                cases.extend(records.cases(page, self._console))
                if limit is not None and len(cases) >= limit:
                    return cases[:limit]
        return cases

    def communications(
        self, case_id: str, *, after_time: str | None = None, limit: int | None = None
    ) -> list[Communication]:
        """A case's communications, oldest first; after_time narrows to the new ones."""
        params: dict[str, Any] = {"caseId": case_id}
        if after_time:
            params["afterTime"] = after_time
        found: list[Communication] = []
        with aws_errors(case_id):
            for page in self.client.get_paginator("describe_communications").paginate(**params):
                found.extend(records.communication(raw, case_id) for raw in page.get("communications") or [])
                if limit is not None and len(found) >= limit:
                    break
        found.sort(key=lambda c: c.time_created)
        return found[-limit:] if limit is not None else found

    def add_communication(
        self,
        case_id: str,
        body: str,
        *,
        cc_email_addresses: Iterable[str] = (),
        attachment_set_id: str | None = None,
    ) -> None:
        params: dict[str, Any] = {"caseId": case_id, "communicationBody": body}
        cc = list(cc_email_addresses)
        if cc:
            params["ccEmailAddresses"] = cc
        if attachment_set_id:
            params["attachmentSetId"] = attachment_set_id
        # Only what AWS stamped since just before this call (a minute allows for clock skew) can
        # be this call's work; an identical "thanks" from five minutes ago must not count.
        started = _seconds_ago(RECONCILE_SKEW_SECONDS)
        try:
            self._send_once(lambda: self._single.add_communication_to_case(**params), case_id)
        except AwsError as error:
            if not error.retryable:
                raise
            # Did AWS take it before failing to answer? Then it is sent, not to be sent again.
            try:
                recent = self.communications(case_id, after_time=started)
            except AwsError:
                raise error from None
            if not any(c.body.strip() == body.strip() for c in recent):
                raise

    def _send_once(self, call: Callable[[], T], case_ref: str = "") -> T:
        """One attempt, resent only when AWS refused it unprocessed (throttling)."""
        for attempt in range(SEND_ATTEMPTS):
            try:
                with aws_errors(case_ref):
                    return call()
            except AwsError as error:
                if error.key != "throttled" or attempt == SEND_ATTEMPTS - 1:
                    raise
                time.sleep(random.uniform(0, 2**attempt))  # noqa: S311 - jitter, not security
        raise AssertionError("unreachable")

    def resolve_case(self, case_id: str) -> tuple[str, str]:
        """Returns (status before, status after)."""
        with aws_errors(case_id):
            response = self.client.resolve_case(caseId=case_id)
        return response.get("initialCaseStatus", ""), response.get("finalCaseStatus", "resolved")

    # Attachments -------------------------------------------------------------------------

    def add_attachments(self, attachments: Iterable[Attachment], attachment_set_id: str | None = None) -> str:
        params: dict[str, Any] = {"attachments": [{"fileName": a.file_name, "data": a.data} for a in attachments]}
        if attachment_set_id:
            params["attachmentSetId"] = attachment_set_id
        with aws_errors():
            response = self.client.add_attachments_to_set(**params)
        return str(records.member(response, "attachmentSetId", "AddAttachmentsToSet"))

    def attachment(self, attachment_id: str) -> Attachment:
        with aws_errors():
            response = self.client.describe_attachment(attachmentId=attachment_id)
        raw = records.member(response, "attachment", "DescribeAttachment")
        return Attachment(file_name=raw.get("fileName") or "attachment", data=raw.get("data") or b"")

    # Options for the create-case modal ----------------------------------------------------

    def services(self, language: str = "en") -> list[Service]:
        def load() -> list[Service]:
            with aws_errors():
                response = self.client.describe_services(language=language)
            found = (records.service(raw) for raw in records.entries(response, "services", "DescribeServices"))
            return [service for service in found if service is not None]

        return self._options.get(("services", language), load)

    def severity_levels(self, language: str = "en") -> list[Severity]:
        def load() -> list[Severity]:
            with aws_errors():
                response = self.client.describe_severity_levels(language=language)
            operation = "DescribeSeverityLevels"
            found = (records.severity(raw) for raw in records.entries(response, "severityLevels", operation))
            return [level for level in found if level is not None]

        return self._options.get(("severity", language), load)

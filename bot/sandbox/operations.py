"""The 16 AWS Support operations: request parameters in, response documents out.

Each handler checks its input the way the service does (required members, modeled limits,
known codes) and hands the rest to the domain (state.py, trusted_advisor.py). botocore checks
types and minimums before sending, but people and other clients call the sandbox too.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.sandbox import catalog
from bot.sandbox.errors import SupportError, invalid_parameter, validation_error
from bot.sandbox.state import NewCaseInput, Page, SupportState
from bot.sandbox.times import parse_time
from bot.sandbox.trusted_advisor import TrustedAdvisor

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

Handler = Callable[["Params"], dict[str, Any]]


class Params:
    """Typed access to a request's JSON members, failing like the service's validation layer."""

    def __init__(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            raise SupportError("SerializationException", "Request body must be a JSON object.")
        self.raw = raw

    def string(self, name: str, *, required: bool = False) -> str | None:
        value = self.raw.get(name)
        if value is None:
            if required:
                raise validation_error(name, None, "Member must not be null")
            return None
        if not isinstance(value, str):
            raise validation_error(name, value, "Member must be a string")
        return value

    def required_string(self, name: str) -> str:
        value = self.string(name, required=True)
        assert value is not None
        return value

    def strings(self, name: str, *, max_items: int | None = None, required: bool = False) -> list[str] | None:
        value = self.raw.get(name)
        if value is None:
            if required:
                raise validation_error(name, None, "Member must not be null")
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise validation_error(name, value, "Member must be a list of strings")
        if max_items is not None and len(value) > max_items:
            raise validation_error(name, value, f"Member must have length less than or equal to {max_items}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise validation_error(name, value, "Member must be a boolean")
        return value

    def max_results(self) -> int:
        limits = catalog.limits()
        value = self.raw.get("maxResults")
        if value is None:
            return limits.max_results_max
        if isinstance(value, bool) or not isinstance(value, int):
            raise validation_error("maxResults", value, "Member must be an integer")
        if not limits.max_results_min <= value <= limits.max_results_max:
            raise validation_error(
                "maxResults",
                value,
                f"Member must have value between {limits.max_results_min} and {limits.max_results_max}",
            )
        return value

    def time(self, name: str) -> datetime | None:
        text = self.string(name)
        if text is None or not text.strip():
            return None
        moment = parse_time(text)
        if moment is None:
            raise invalid_parameter(f"Invalid {name}: {text}. Use an ISO 8601 date and time.")
        return moment

    def page(self) -> Page:
        return Page(
            max_results=self.max_results(),
            next_token=self.string("nextToken") or None,
            after=self.time("afterTime"),
            before=self.time("beforeTime"),
        )


# Checks shared by several operations ---------------------------------------------------------


def _body(params: Params) -> str:
    body = params.required_string("communicationBody")
    limits = catalog.limits()
    if len(body.strip()) < limits.body_min:
        raise validation_error(
            "communicationBody", body, f"Member must have length greater than or equal to {limits.body_min}"
        )
    if len(body) > limits.body_max:
        raise validation_error(
            "communicationBody", "...", f"Member must have length less than or equal to {limits.body_max}"
        )
    return body


def _subject(params: Params) -> str:
    subject = params.required_string("subject")
    if not subject.strip():
        raise validation_error("subject", subject, "Member must have length greater than or equal to 1")
    if len(subject) > catalog.SUBJECT_MAX_LENGTH:
        raise validation_error(
            "subject", "...", f"Member must have length less than or equal to {catalog.SUBJECT_MAX_LENGTH}"
        )
    return subject


def _cc(params: Params) -> list[str]:
    addresses = params.strings("ccEmailAddresses", max_items=catalog.limits().cc_max) or []
    for address in addresses:
        if not EMAIL_PATTERN.match(address):
            raise invalid_parameter(f"Invalid email address: {address}")
    return addresses


def _language(params: Params, *, required: bool = False) -> str:
    language = params.string("language", required=required) or "en"
    if language not in catalog.CASE_LANGUAGES:
        raise invalid_parameter(f"Invalid language code: {language}. Supported: {', '.join(catalog.CASE_LANGUAGES)}")
    return language


def _issue_type(params: Params, *, required: bool = False) -> str:
    issue_type = params.string("issueType", required=required) or "technical"
    if issue_type not in catalog.ISSUE_TYPES:
        raise invalid_parameter(f"Invalid issue type: {issue_type}. Use technical or customer-service.")
    return issue_type


def _service_and_category(
    params: Params, *, required: bool = False, extra: dict[str, catalog.ServiceEntry] | None = None
) -> tuple[str, str]:
    service_code = params.string("serviceCode", required=required) or "general-info"
    service = catalog.services_by_code().get(service_code) or (extra or {}).get(service_code)
    if service is None:
        raise invalid_parameter(f"Invalid service code: {service_code}")
    category_code = params.string("categoryCode", required=required) or service.categories[0][0]
    if category_code not in service.category_codes:
        raise invalid_parameter(f"Invalid category code {category_code} for service {service_code}")
    return service_code, category_code


def _severity(params: Params) -> str:
    severity = params.string("severityCode") or "low"
    if severity not in catalog.SEVERITY_CODES:
        raise invalid_parameter(f"Invalid severity code: {severity}")
    return severity


def _check_ids(params: Params) -> list[str]:
    ids = params.strings("checkIds", required=True)
    assert ids is not None
    return ids


def _ta_language(params: Params, *, required: bool) -> None:
    language = params.string("language", required=required) or "en"
    if language not in catalog.TRUSTED_ADVISOR_LANGUAGES:
        raise invalid_parameter(f"Unsupported language: {language}")


def _attachment_files(params: Params) -> list[tuple[str, bytes]]:
    raw = params.raw.get("attachments")
    if raw is None:
        raise validation_error("attachments", None, "Member must not be null")
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise validation_error("attachments", raw, "Member must be a list of attachments")
    if not raw:
        raise validation_error("attachments", "[]", "Member must have length greater than or equal to 1")
    files = []
    for index, item in enumerate(raw):
        name = item.get("fileName")
        if not isinstance(name, str) or not name.strip():
            raise validation_error(f"attachments.{index + 1}.member.fileName", name, "Member must not be null")
        files.append((name, _decode_blob(item.get("data"), f"attachments.{index + 1}.member.data")))
    return files


def _decode_blob(value: Any, field: str) -> bytes:
    """Blobs travel base64-encoded in the JSON protocol."""
    if value is None:
        return b""
    if not isinstance(value, str):
        raise validation_error(field, "...", "Member must be base64-encoded binary data")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise validation_error(field, "...", "Member must be base64-encoded binary data") from exc


# The operations ------------------------------------------------------------------------------


class SupportApi:
    """Dispatches an operation name to its handler."""

    def __init__(self, state: SupportState, trusted_advisor: TrustedAdvisor) -> None:
        self.state = state
        self.trusted_advisor = trusted_advisor
        # Services an experiment adds to the account's (SandboxServer.add_service), by code.
        self.extra_services: dict[str, catalog.ServiceEntry] = {}
        self.handlers: dict[str, Handler] = {
            "AddAttachmentsToSet": self.add_attachments_to_set,
            "AddCommunicationToCase": self.add_communication_to_case,
            "CreateCase": self.create_case,
            "DescribeAttachment": self.describe_attachment,
            "DescribeCases": self.describe_cases,
            "DescribeCommunications": self.describe_communications,
            "DescribeCreateCaseOptions": self.describe_create_case_options,
            "DescribeServices": self.describe_services,
            "DescribeSeverityLevels": self.describe_severity_levels,
            "DescribeSupportedLanguages": self.describe_supported_languages,
            "DescribeTrustedAdvisorCheckRefreshStatuses": self.describe_refresh_statuses,
            "DescribeTrustedAdvisorCheckResult": self.describe_check_result,
            "DescribeTrustedAdvisorCheckSummaries": self.describe_check_summaries,
            "DescribeTrustedAdvisorChecks": self.describe_checks,
            "RefreshTrustedAdvisorCheck": self.refresh_check,
            "ResolveCase": self.resolve_case,
        }

    def call(self, operation: str, raw: Any) -> dict[str, Any]:
        handler = self.handlers.get(operation)
        if handler is None:
            raise SupportError("UnknownOperationException", f"Unknown operation {operation}")
        return handler(Params(raw))

    # Cases -------------------------------------------------------------------------------------

    def create_case(self, params: Params) -> dict[str, Any]:
        service_code, category_code = _service_and_category(params, extra=self.extra_services)
        new = NewCaseInput(
            subject=_subject(params),
            body=_body(params),
            service_code=service_code,
            category_code=category_code,
            severity_code=_severity(params),
            language=_language(params),
            issue_type=_issue_type(params),
            cc_email_addresses=tuple(_cc(params)),
            attachment_set_id=params.string("attachmentSetId") or None,
        )
        return {"caseId": self.state.create_case(new)}

    def add_communication_to_case(self, params: Params) -> dict[str, Any]:
        case_id = params.required_string("caseId")
        body = _body(params)
        cc = _cc(params)
        self.state.add_communication(case_id, body, cc, params.string("attachmentSetId") or None)
        return {"result": True}

    def resolve_case(self, params: Params) -> dict[str, Any]:
        initial, final = self.state.resolve_case(params.required_string("caseId"))
        return {"initialCaseStatus": initial, "finalCaseStatus": final}

    def describe_cases(self, params: Params) -> dict[str, Any]:
        case_ids = params.strings("caseIdList", max_items=catalog.limits().case_ids_max)
        if params.string("language"):
            _language(params)
        return self.state.describe_cases(
            case_ids=case_ids,
            display_id=params.string("displayId") or None,
            include_resolved=params.boolean("includeResolvedCases", False),
            include_communications=params.boolean("includeCommunications", True),
            page=params.page(),
        )

    def describe_communications(self, params: Params) -> dict[str, Any]:
        case_id = params.required_string("caseId")
        return self.state.describe_communications(case_id, params.page())

    # Attachments -------------------------------------------------------------------------------

    def add_attachments_to_set(self, params: Params) -> dict[str, Any]:
        files = _attachment_files(params)
        return self.state.add_attachments_to_set(files, params.string("attachmentSetId") or None)

    def describe_attachment(self, params: Params) -> dict[str, Any]:
        return self.state.describe_attachment(params.required_string("attachmentId"))

    # Options for creating a case ---------------------------------------------------------------

    def describe_services(self, params: Params) -> dict[str, Any]:
        _language(params)
        wanted = params.strings("serviceCodeList", max_items=catalog.limits().service_codes_max)
        entries = (*catalog.services(), *self.extra_services.values())
        if wanted:
            chosen = set(wanted)
            entries = tuple(entry for entry in entries if entry.code in chosen)
        return {"services": [entry.to_api() for entry in entries]}

    def describe_severity_levels(self, params: Params) -> dict[str, Any]:
        _language(params)
        return {"severityLevels": [{"code": code, "name": name} for code, name in catalog.SEVERITY_LEVELS]}

    def describe_supported_languages(self, params: Params) -> dict[str, Any]:
        _issue_type(params, required=True)
        _service_and_category(params, required=True, extra=self.extra_services)
        return {
            "supportedLanguages": [
                {"code": code, "language": name, "display": catalog.LANGUAGE_DISPLAY[code]}
                for code, name in catalog.CASE_LANGUAGES.items()
            ]
        }

    def describe_create_case_options(self, params: Params) -> dict[str, Any]:
        issue_type = _issue_type(params, required=True)
        _service_and_category(params, required=True, extra=self.extra_services)
        language = _language(params, required=True)
        return {
            "languageAvailability": _language_availability(language, issue_type),
            "communicationTypes": _communication_types(language),
        }

    # Trusted Advisor ---------------------------------------------------------------------------

    def describe_checks(self, params: Params) -> dict[str, Any]:
        _ta_language(params, required=True)
        return self.trusted_advisor.describe_checks()

    def describe_check_summaries(self, params: Params) -> dict[str, Any]:
        return self.trusted_advisor.summaries(_check_ids(params))

    def describe_check_result(self, params: Params) -> dict[str, Any]:
        _ta_language(params, required=False)
        return self.trusted_advisor.result(params.required_string("checkId"))

    def refresh_check(self, params: Params) -> dict[str, Any]:
        return self.trusted_advisor.refresh(params.required_string("checkId"))

    def describe_refresh_statuses(self, params: Params) -> dict[str, Any]:
        return self.trusted_advisor.refresh_statuses(_check_ids(params))


def _language_availability(language: str, issue_type: str) -> str:
    if language == "en" or (language == "ja" and issue_type == "technical"):
        return "available"
    return "best_effort" if issue_type == "technical" else "available"


def _communication_types(language: str) -> list[dict[str, Any]]:
    # English is staffed around the clock; other languages during Asia-Pacific business hours.
    all_day = [{"startTime": "00:00:00.000", "endTime": "23:59:59.999"}]
    business = [{"startTime": "00:00:00.000", "endTime": "09:00:00.000"}]
    hours = all_day if language == "en" else business
    return [
        {"type": "web", "supportedHours": all_day, "datesWithoutSupport": []},
        {"type": "chat", "supportedHours": hours, "datesWithoutSupport": []},
        {"type": "call", "supportedHours": hours, "datesWithoutSupport": []},
    ]

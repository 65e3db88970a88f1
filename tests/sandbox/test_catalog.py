"""Services, categories, severities, languages and create-case options."""

from __future__ import annotations

import re
import time
from typing import Any

import botocore.exceptions
import pytest

from bot.sandbox import catalog


def error_code(call: Any, **params: Any) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(**params)
    return caught.value.response["Error"]["Code"]


def test_services_look_like_a_real_account(client: Any) -> None:
    services = client.describe_services(language="en")["services"]
    codes = [s["code"] for s in services]

    assert len(services) > 100
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", code) for code in codes)
    assert {"amazon-elastic-compute-cloud-linux", "general-info", "account-management", "billing"} <= set(codes)
    assert all(s["name"] and s["categories"] for s in services)
    ec2 = next(s for s in services if s["code"] == "amazon-elastic-compute-cloud-linux")
    assert {"general-guidance", "instance-issue", "performance", "other"} <= {c["code"] for c in ec2["categories"]}


def test_service_code_list_filters(client: Any) -> None:
    chosen = client.describe_services(serviceCodeList=["billing", "general-info", "unknown-code"])["services"]
    assert sorted(s["code"] for s in chosen) == ["billing", "general-info"]
    too_many = [f"code-{i}" for i in range(101)]
    assert error_code(client.describe_services, serviceCodeList=too_many) == "ValidationException"
    assert error_code(client.describe_services, language="de") == "InvalidParameterValueException"


def test_building_the_catalog_is_fast() -> None:
    catalog.services.cache_clear()
    catalog.services_by_code.cache_clear()
    # CPU time, not the wall clock: the suite's other workers share the cores (review32 saw 0.93 s of wall clock).
    started = time.thread_time()
    built = catalog.services()
    assert time.thread_time() - started < 0.5
    assert len(built) > 100


def test_severity_levels(client: Any) -> None:
    levels = client.describe_severity_levels(language="en")["severityLevels"]
    assert levels == [
        {"code": "low", "name": "General guidance"},
        {"code": "normal", "name": "System impaired"},
        {"code": "high", "name": "Production system impaired"},
        {"code": "urgent", "name": "Production system down"},
        {"code": "critical", "name": "Business-critical system down"},
    ]


def test_supported_languages(client: Any) -> None:
    languages = client.describe_supported_languages(
        issueType="technical", serviceCode="amazon-simple-storage-service", categoryCode="performance"
    )["supportedLanguages"]
    assert [lang["code"] for lang in languages] == ["en", "ja", "zh", "ko"]
    assert all(lang["language"] and lang["display"] for lang in languages)
    assert error_code(
        client.describe_supported_languages, issueType="technical", serviceCode="nope", categoryCode="other"
    ) == ("InvalidParameterValueException")


def test_create_case_options(client: Any) -> None:
    options = client.describe_create_case_options(
        issueType="technical", serviceCode="general-info", categoryCode="using-aws", language="en"
    )
    japanese = client.describe_create_case_options(
        issueType="customer-service", serviceCode="billing", categoryCode="payment-issue", language="ko"
    )

    assert options["languageAvailability"] == "available"
    assert {t["type"] for t in options["communicationTypes"]} == {"web", "chat", "call"}
    assert all(t["supportedHours"] for t in options["communicationTypes"])
    assert japanese["languageAvailability"] in {"available", "best_effort", "unavailable"}
    assert error_code(
        client.describe_create_case_options,
        issueType="technical",
        serviceCode="general-info",
        categoryCode="instance-issue",
        language="en",
    ) == ("InvalidParameterValueException")

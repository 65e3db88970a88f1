"""What an account's AWS Support offers: services and categories, severities, languages, limits.

Limits come from botocore's Support model where it carries them; the service list is derived
from the service models botocore ships, so it is as long and as current as a real account's.
"""

from __future__ import annotations

import functools
import gzip
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

import botocore.session

ISSUE_TYPES = ("technical", "customer-service")
CASE_LANGUAGES = {"en": "English", "ja": "Japanese", "zh": "Chinese", "ko": "Korean"}
# DescribeSupportedLanguages gives the language's own name as its display value.
LANGUAGE_DISPLAY = {"en": "English", "ja": "日本語", "zh": "中文", "ko": "한국어"}
TRUSTED_ADVISOR_LANGUAGES = ("zh", "zh_TW", "en", "fr", "de", "id", "it", "ja", "ko", "pt_BR", "es")

SEVERITY_LEVELS = (
    ("low", "General guidance"),
    ("normal", "System impaired"),
    ("high", "Production system impaired"),
    ("urgent", "Production system down"),
    ("critical", "Business-critical system down"),
)
SEVERITY_CODES = frozenset(code for code, _ in SEVERITY_LEVELS)

# Not in the model (Subject has no length there); the Support Center form stops at this length.
SUBJECT_MAX_LENGTH = 255
ATTACHMENTS_PER_SET = 3
ATTACHMENT_MAX_BYTES = 5 * 1024 * 1024
ATTACHMENT_SET_LIFETIME_SECONDS = 3600
# AttachmentLimitExceeded: "too many attachment sets created in a short period of time". AWS does
# not publish the numbers; these are generous enough that only a control that lowers them trips it.
SET_RATE_WINDOW_SECONDS = 600
NEW_SETS_PER_WINDOW = 100


@dataclass(frozen=True)
class Limits:
    body_min: int
    body_max: int
    cc_max: int
    case_ids_max: int
    service_codes_max: int
    max_results_min: int
    max_results_max: int


@functools.cache
def limits() -> Limits:
    """The numbers the Support model declares, read once."""
    model = botocore.session.get_session().get_service_model("support")

    def bound(shape: str, key: str) -> int:
        return int(model.shape_for(shape).metadata[key])

    return Limits(
        body_min=bound("CommunicationBody", "min"),
        body_max=bound("CommunicationBody", "max"),
        cc_max=bound("CcEmailAddressList", "max"),
        case_ids_max=bound("CaseIdList", "max"),
        service_codes_max=bound("ServiceCodeList", "max"),
        max_results_min=bound("MaxResults", "min"),
        max_results_max=bound("MaxResults", "max"),
    )


@dataclass(frozen=True)
class ServiceEntry:
    code: str
    name: str
    categories: tuple[tuple[str, str], ...]

    def to_api(self) -> dict[str, object]:
        return {
            "code": self.code,
            "name": self.name,
            "categories": [{"code": code, "name": name} for code, name in self.categories],
        }

    @property
    def category_codes(self) -> frozenset[str]:
        return frozenset(code for code, _ in self.categories)


GENERAL_GUIDANCE = ("general-guidance", "General Guidance")
OTHER = ("other", "Other")
BASE_CATEGORIES = (
    GENERAL_GUIDANCE,
    ("configuration-and-setup", "Configuration and Setup"),
    ("api-issue", "API Issue"),
    ("performance", "Performance"),
    OTHER,
)
COMPUTE_CATEGORIES = (*BASE_CATEGORIES[:1], ("instance-issue", "Instance Issue"), *BASE_CATEGORIES[1:])
DATABASE_CATEGORIES = (*BASE_CATEGORIES[:1], ("database-issue", "Database Issue"), *BASE_CATEGORIES[1:])

# The classic codes people know from the Support Center, with the botocore models they stand
# for, so those models do not show up a second time under a derived code.
CLASSIC_SERVICES: tuple[tuple[str, str, tuple[tuple[str, str], ...], tuple[str, ...]], ...] = (
    (
        "general-info",
        "General Info and Getting Started",
        (("using-aws", "Using AWS & Services"), GENERAL_GUIDANCE, ("security", "Security"), OTHER),
        (),
    ),
    (
        "account-management",
        "Account Management",
        (
            ("general-account-question", "General Account Question"),
            ("account-structure", "Account Structure"),
            ("security", "Security"),
            OTHER,
        ),
        ("account",),
    ),
    (
        "billing",
        "Billing",
        (
            ("general-billing-question", "General Billing Question"),
            ("invoices-and-reports", "Invoices and Reports"),
            ("payment-issue", "Payment Issue"),
            ("reserved-instances", "Reserved Instances and Savings Plans"),
            OTHER,
        ),
        ("billing",),
    ),
    ("amazon-elastic-compute-cloud-linux", "Elastic Compute Cloud (EC2 - Linux)", COMPUTE_CATEGORIES, ("ec2",)),
    ("amazon-elastic-compute-cloud-windows", "Elastic Compute Cloud (EC2 - Windows)", COMPUTE_CATEGORIES, ()),
    ("amazon-simple-storage-service", "Simple Storage Service (S3)", BASE_CATEGORIES, ("s3", "s3control")),
    ("amazon-relational-database-service-mysql", "Relational Database Service (MySQL)", DATABASE_CATEGORIES, ("rds",)),
    (
        "amazon-relational-database-service-postgresql",
        "Relational Database Service (PostgreSQL)",
        DATABASE_CATEGORIES,
        (),
    ),
    ("amazon-relational-database-service-aurora", "Relational Database Service (Aurora)", DATABASE_CATEGORIES, ()),
    ("amazon-dynamodb", "DynamoDB", DATABASE_CATEGORIES, ("dynamodb",)),
    ("aws-lambda", "Lambda", BASE_CATEGORIES, ("lambda",)),
    ("amazon-virtual-private-cloud", "VPC (Virtual Private Cloud)", BASE_CATEGORIES, ()),
    ("elastic-load-balancing", "Elastic Load Balancing (ELB)", BASE_CATEGORIES, ("elb", "elbv2")),
    ("aws-identity-and-access-management", "Identity and Access Management (IAM)", BASE_CATEGORIES, ("iam",)),
    ("amazon-cloudfront", "CloudFront", BASE_CATEGORIES, ("cloudfront",)),
    ("amazon-route53", "Route 53", BASE_CATEGORIES, ("route53",)),
    ("amazon-cloudwatch", "CloudWatch", BASE_CATEGORIES, ("cloudwatch",)),
    ("aws-cloudformation", "CloudFormation", BASE_CATEGORIES, ("cloudformation",)),
    ("amazon-elastic-container-service", "Elastic Container Service (ECS)", COMPUTE_CATEGORIES, ("ecs",)),
    ("amazon-elastic-kubernetes-service", "Elastic Kubernetes Service (EKS)", COMPUTE_CATEGORIES, ("eks",)),
)

# Support topics rather than AWS services: no Trusted Advisor check is about them.
NON_SERVICE_CODES = frozenset({"general-info", "account-management", "billing"})
COMPUTE_WORDS = ("Compute", "Container", "Kubernetes", "Lightsail", "WorkSpaces", "Batch", "GameLift", "AppStream")
DATABASE_WORDS = ("Database", "DB", "Redshift", "ElastiCache", "Keyspaces", "Neptune", "Timestream", "MemoryDB")
FULL_NAME_PATTERN = re.compile(r'"serviceFullName"\s*:\s*"([^"]+)"')
MODEL_HEAD_CHARS = 4096


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _read_head(path: str) -> str:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
        return handle.read(MODEL_HEAD_CHARS)


def _model_full_names() -> dict[str, str]:
    """botocore service name -> serviceFullName, without loading whole models.

    Loading all ~400 models takes seconds; their metadata sits at the top of each file, so
    reading a few kilobytes of each is enough and keeps the catalog well under half a second.
    """
    loader = botocore.session.get_session().get_component("data_loader")
    names: dict[str, str] = {}
    for service in loader.list_available_services("service-2"):
        versions = loader.list_api_versions(service, "service-2")
        if not versions:
            continue
        for base in loader.search_paths:
            path = _existing_model_file(os.path.join(base, service, versions[-1]))
            if path:
                match = FULL_NAME_PATTERN.search(_read_head(path))
                if match:
                    names[service] = match.group(1)
                break
    return names


def _existing_model_file(directory: str) -> str | None:
    for file_name in ("service-2.json.gz", "service-2.json"):
        path = os.path.join(directory, file_name)
        if os.path.exists(path):
            return path
    return None


def _categories_for(name: str) -> tuple[tuple[str, str], ...]:
    if any(word in name for word in COMPUTE_WORDS):
        return COMPUTE_CATEGORIES
    if any(word in name for word in DATABASE_WORDS):
        return DATABASE_CATEGORIES
    return BASE_CATEGORIES


def _derived_services(full_names: dict[str, str], covered: Iterable[str]) -> list[ServiceEntry]:
    skip = set(covered)
    entries: list[ServiceEntry] = []
    for service, name in sorted(full_names.items()):
        # Names like "AmazonApiGatewayV2" are API artifacts, not what a console shows.
        if service in skip or " " not in name:
            continue
        entries.append(ServiceEntry(slug(name), name, _categories_for(name)))
    return entries


@functools.cache
def services() -> tuple[ServiceEntry, ...]:
    """Every service a case can be opened for, sorted by name as the console lists them."""
    classic = [ServiceEntry(code, name, categories) for code, name, categories, _ in CLASSIC_SERVICES]
    covered = {model for *_, models in CLASSIC_SERVICES for model in models}
    by_code = {entry.code: entry for entry in classic}
    for entry in _derived_services(_model_full_names(), covered):
        by_code.setdefault(entry.code, entry)
    return tuple(sorted(by_code.values(), key=lambda entry: entry.name.lower()))


@functools.cache
def services_by_code() -> dict[str, ServiceEntry]:
    return {entry.code: entry for entry in services()}

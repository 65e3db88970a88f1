"""What AWS Support's API allows, read once from botocore's service model: one place per fact.

The model carries the length and count limits of the inputs and which output members are
required. What only the API reference states (the attachment set's "three attachments and 5 MB
per attachment", its one-hour life) sits here too, beside the facts the model carries.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import botocore.model

from bot.aws.session import new_botocore_session

SERVICE = "support"
# The API reference, AttachmentSetSizeLimitExceeded: "three attachments and 5 MB per attachment".
ATTACHMENTS_PER_SET = 3
ATTACHMENT_MAX_BYTES = 5 * 1024 * 1024
# The API reference, AddAttachmentsToSet: "The set is available for 1 hour after it's created."
ATTACHMENT_SET_LIFETIME_SECONDS = 3600


@functools.cache
def service_model() -> botocore.model.ServiceModel:
    return new_botocore_session().get_service_model(SERVICE)


def _bound(shape: str, key: str) -> int:
    return int(service_model().shape_for(shape).metadata[key])


@dataclass(frozen=True)
class Limits:
    communication_body_max: int  # CreateCase and AddCommunicationToCase communicationBody
    cc_max: int  # ccEmailAddresses
    case_ids_per_call: int  # DescribeCases caseIdList
    max_results_min: int  # DescribeCases / DescribeCommunications maxResults
    max_results_max: int
    attachments_per_set: int = ATTACHMENTS_PER_SET
    attachment_max_bytes: int = ATTACHMENT_MAX_BYTES
    attachment_set_lifetime_seconds: int = ATTACHMENT_SET_LIFETIME_SECONDS


@functools.cache
def limits() -> Limits:
    return Limits(
        communication_body_max=_bound("CommunicationBody", "max"),
        cc_max=_bound("CcEmailAddressList", "max"),
        case_ids_per_call=_bound("CaseIdList", "max"),
        max_results_min=_bound("MaxResults", "min"),
        max_results_max=_bound("MaxResults", "max"),
    )


def error_codes(operation: str) -> frozenset[str]:
    """The error codes the model declares for one operation (common errors are not modeled)."""
    return frozenset(shape.error_code for shape in service_model().operation_model(operation).error_shapes)


def all_error_codes() -> frozenset[str]:
    return frozenset(shape.error_code for shape in service_model().error_shapes)

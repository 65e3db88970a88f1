"""The errors the sandbox answers with, in the shape botocore's JSON parser reads.

botocore takes the error code from `__type` (dropping anything up to a '#') and the text from
`message`; the HTTP status decides whether its retry logic treats the error as transient.
"""

from __future__ import annotations

from typing import Any

# Codes the real service answers with a 5xx; everything else is a client error (400).
SERVER_ERROR_STATUS = {"InternalServerError": 500, "InternalFailure": 500, "ServiceUnavailable": 503}

DEFAULT_MESSAGES = {
    "AttachmentIdNotFound": "An attachment with the specified ID could not be found.",
    "AttachmentLimitExceeded": "The limit for the number of attachment sets created in a short period of time "
    "has been exceeded.",
    "AttachmentSetExpired": "The expiration time of the attachment set has passed. "
    "The set expires 1 hour after it is created.",
    "AttachmentSetIdNotFound": "An attachment set with the specified ID could not be found.",
    "AttachmentSetSizeLimitExceeded": "A limit for the size of an attachment set has been exceeded. "
    "The limits are three attachments and 5 MB per attachment.",
    "CaseCreationLimitExceeded": "The case creation limit for the account has been exceeded.",
    "CaseIdNotFound": "The requested caseId couldn't be located.",
    "DescribeAttachmentLimitExceeded": "The limit for the number of DescribeAttachment requests in a short period "
    "of time has been exceeded.",
    "InternalServerError": "An internal server error occurred.",
    "ServiceUnavailable": "The request has failed due to a temporary failure of the server.",
    "SubscriptionRequiredException": "AWS Premium Support Subscription is required to use this service.",
    "ThrottlingException": "Rate exceeded",
    "AccessDeniedException": "User is not authorized to perform this action.",
}


class SupportError(Exception):
    """A failure the emulated service reports to the caller."""

    def __init__(self, code: str, message: str | None = None) -> None:
        self.code = code
        self.message = message if message is not None else DEFAULT_MESSAGES.get(code, code)
        super().__init__(f"{code}: {self.message}")

    @property
    def status(self) -> int:
        return SERVER_ERROR_STATUS.get(self.code, 400)

    def body(self) -> dict[str, Any]:
        return {"__type": self.code, "message": self.message}


def validation_error(field: str, value: Any, constraint: str) -> SupportError:
    """Input that breaks a modeled constraint; worded like the service's own validation layer."""
    shown = "null" if value is None else f"'{value}'"
    return SupportError(
        "ValidationException",
        f"1 validation error detected: Value {shown} at '{field}' failed to satisfy constraint: {constraint}",
    )


def invalid_parameter(message: str) -> SupportError:
    """A well-formed value the service does not know (service code, severity, check ID, ...)."""
    return SupportError("InvalidParameterValueException", message)

"""AWS errors -> domain errors whose key names the message a person sees (templates/messages.txt.j2)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import botocore.exceptions

from bot.aws import model
from bot.errors import AttachmentProblem, AwsError, CaseNotFound

# Error code -> (message key, worth retrying later). The Support model declares the codes of its
# operations (tests/sandbox/test_gateway.py holds this table to the model); the rest are AWS's
# common errors, some of which come in two spellings depending on the service's front end.
ERROR_KEYS: dict[str, tuple[str, bool]] = {
    "CaseIdNotFound": ("case_not_found", False),
    "CaseCreationLimitExceeded": ("case_creation_limit", False),
    # The API reference: too many attachment sets created in a short period of time.
    "AttachmentLimitExceeded": ("attachment_sets_throttled", True),
    "AttachmentSetExpired": ("attachment_set_expired", False),
    "AttachmentSetIdNotFound": ("attachment_set_not_found", False),
    # The API reference: "three attachments and 5 MB per attachment".
    "AttachmentSetSizeLimitExceeded": ("attachment_set_limit", False),
    "AttachmentIdNotFound": ("attachment_not_found", False),
    "DescribeAttachmentLimitExceeded": ("describe_attachment_limit", True),
    "DryRunOperationException": ("aws_error", False),
    "UploadIdNotFound": ("aws_error", False),
    "ThrottlingException": ("throttled", True),
    "Throttling": ("throttled", True),
    "TooManyRequestsException": ("throttled", True),
    "SubscriptionRequiredException": ("subscription_required", False),
    "InternalServerError": ("aws_internal_error", True),
    "InternalFailure": ("aws_internal_error", True),
    "ServiceUnavailable": ("aws_internal_error", True),
    "AccessDeniedException": ("aws_access_denied", False),
    "UnrecognizedClientException": ("aws_bad_credentials", False),
    "InvalidClientTokenId": ("aws_bad_credentials", False),
    "ExpiredTokenException": ("aws_bad_credentials", False),
    "InvalidSignatureException": ("aws_bad_credentials", False),
    "ValidationException": ("aws_validation", False),
    "ValidationError": ("aws_validation", False),
    "InvalidParameterValueException": ("aws_validation", False),
    "InvalidParameterValue": ("aws_validation", False),
}
# The modeled codes whose name says they are about attachments.
ATTACHMENT_CODES = frozenset(code for code in model.all_error_codes() if code.startswith("Attachment"))


def error_from_client_error(exc: botocore.exceptions.ClientError, case_ref: str = "") -> AwsError:
    error = exc.response.get("Error") or {}
    code = str(error.get("Code") or "")
    aws_message = str(error.get("Message") or "")
    key, retryable = ERROR_KEYS.get(code, ("aws_error", False))
    status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0
    if code not in ERROR_KEYS and int(status) >= 500:
        # A bare 502/503/504 from a proxy or a load balancer (botocore's code is the status itself):
        # the request may have gone through, as with AWS's own 5xx.
        key, retryable = "aws_internal_error", True
    if code == "CaseIdNotFound":
        return CaseNotFound(key, code=code, ref=case_ref, aws_message=aws_message)
    if code in ATTACHMENT_CODES:
        return AttachmentProblem(key, code=code, retryable=retryable, aws_message=aws_message)
    return AwsError(key, code=code, retryable=retryable, aws_message=aws_message)


def incomplete_answer(operation: str, member: str, *, retryable: bool = False) -> AwsError:
    """AWS answered without a member the bot cannot do without (the model marks most optional);
    `retryable` when the caller can safely ask again (it finds what the first call did by itself)."""
    return AwsError(
        "aws_incomplete_answer", code="IncompleteAnswer", retryable=retryable, operation=operation, member=member
    )


@contextmanager
def aws_errors(case_ref: str = "") -> Iterator[None]:
    """Turn whatever botocore raises into a domain error a person can act on."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        raise error_from_client_error(exc, case_ref) from exc
    except (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError) as exc:
        raise AwsError("no_credentials", code="NoCredentials") from exc
    except botocore.exceptions.SSLError as exc:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):  # at the handshake, before anything was sent
            raise AwsError("aws_setup_error", code="SSLError", aws_message=str(exc)) from exc
        # Otherwise possibly while the answer was read, the request gone out: no answer.
        raise AwsError("aws_unreachable", code="Unreachable", retryable=True) from exc
    except (
        botocore.exceptions.EndpointConnectionError,
        botocore.exceptions.ConnectTimeoutError,
        botocore.exceptions.ReadTimeoutError,
        botocore.exceptions.ConnectionClosedError,
        # The rest of the connection's failures (a proxy, TLS, an answer cut short): possibly after
        # the request went out, so never taken for the bot's own setup.
        botocore.exceptions.HTTPClientError,
        botocore.exceptions.IncompleteReadError,
    ) as exc:
        raise AwsError("aws_unreachable", code="Unreachable", retryable=True) from exc
    except botocore.exceptions.ParamValidationError as exc:
        raise AwsError("aws_validation", code="ParamValidation", aws_message=str(exc)) from exc
    except botocore.exceptions.BotoCoreError as exc:
        # Profiles, SSO tokens, TLS, proxies: the bot's own AWS setup, not the request.
        raise AwsError("aws_setup_error", code=type(exc).__name__, aws_message=str(exc)) from exc

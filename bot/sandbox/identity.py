"""STS and Organizations as the sandbox speaks them: the wire formats botocore reads, nothing more.

STS uses the query protocol (a form-encoded POST, answered in XML); Organizations is JSON 1.1
(`X-Amz-Target: AWSOrganizationsV20161128.<Operation>`). Which accounts exist and what they may do
is decided in bot.sandbox.accounts; this module only formats questions and answers.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from bot.sandbox.state import ACCOUNT_ID
from bot.sandbox.times import format_seconds

STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
ORGANIZATIONS_TARGET_PREFIX = "AWSOrganizationsV20161128."
XML_CONTENT_TYPE = "text/xml"
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"

ORGANIZATION_ID = "o-sandbox0001"
MIN_DURATION, MAX_DURATION, DEFAULT_DURATION = 900, 43200, 3600
ROLE_ARN = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):role/(?:[\w+=,.@/-]*/)?([\w+=,.@-]{1,64})$")
SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")
KEY_ALPHABET = string.ascii_uppercase + string.digits

# STS answers these with their HTTP status; anything else a caller did wrong is a 400.
STS_STATUS = {"AccessDenied": 403, "ExpiredToken": 400, "InvalidClientTokenId": 403}


class IdentityError(Exception):
    """A refusal of STS or Organizations, in that service's own words."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status or STS_STATUS.get(code, 400)


def parse_query(body: bytes) -> dict[str, str]:
    """A query-protocol request body: Action, Version and the operation's parameters."""
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in fields.items()}


def sts_answer(action: str, result: Mapping[str, Any]) -> bytes:
    body = _xml(result)
    request_id = uuid.uuid4()
    return (
        f'<{action}Response xmlns="{STS_NAMESPACE}"><{action}Result>{body}</{action}Result>'
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
    ).encode()


def sts_error(error: IdentityError) -> bytes:
    kind = "Receiver" if error.status >= 500 else "Sender"
    return (
        f'<ErrorResponse xmlns="{STS_NAMESPACE}"><Error><Type>{kind}</Type>'
        f"<Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()


def organizations_operation(target: str) -> str | None:
    if target.startswith(ORGANIZATIONS_TARGET_PREFIX):
        return target[len(ORGANIZATIONS_TARGET_PREFIX) :]
    return None


def organizations_request(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError as exc:
        raise IdentityError("SerializationException", "Request body is not valid JSON.") from exc
    if not isinstance(parsed, dict):
        raise IdentityError("SerializationException", "Request body must be a JSON object.")
    return parsed


def json_answer(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def json_error(error: IdentityError) -> bytes:
    return json.dumps({"__type": error.code, "Message": error.message}).encode()


def _xml(value: Any) -> str:
    if isinstance(value, Mapping):
        return "".join(f"<{name}>{_xml(inner)}</{name}>" for name, inner in value.items())
    return escape(str(value))


# STS ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssumeRoleRequest:
    role_arn: str
    account_id: str
    role_name: str
    session_name: str
    duration: int


def assume_role_request(request: Mapping[str, str]) -> AssumeRoleRequest:
    """AssumeRole's parameters, checked as STS checks them."""
    role_arn = request.get("RoleArn", "")
    session_name = request.get("RoleSessionName", "")
    match = ROLE_ARN.match(role_arn)
    if match is None or not SESSION_NAME.match(session_name):
        raise IdentityError("ValidationError", "1 validation error detected: RoleArn or RoleSessionName is invalid")
    raw = request.get("DurationSeconds")
    try:
        duration = int(raw) if raw else DEFAULT_DURATION
    except ValueError:
        duration = -1
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise IdentityError(
            "ValidationError",
            f"1 validation error detected: Value '{raw}' at 'durationSeconds' failed to satisfy constraint: "
            f"Member must have value between {MIN_DURATION} and {MAX_DURATION}",
        )
    return AssumeRoleRequest(role_arn, match.group(1), match.group(2), session_name, duration)


def access_denied(caller_account_id: str, role_arn: str) -> IdentityError:
    return IdentityError(
        "AccessDenied",
        f"User: arn:aws:iam::{caller_account_id}:user/sandbox is not authorized to perform: "
        f"sts:AssumeRole on resource: {role_arn}",
    )


def new_access_key(account_id: str) -> str:
    """A temporary access key that names its account: ASIA, the 12-digit ID, 4 random characters."""
    return "ASIA" + account_id + "".join(secrets.choice(KEY_ALPHABET) for _ in range(4))


def assumed_role_answer(
    account_id: str, wanted: AssumeRoleRequest, access_key: str, expires: datetime
) -> dict[str, Any]:
    return {
        "Credentials": {
            "AccessKeyId": access_key,
            "SecretAccessKey": secrets.token_urlsafe(30),
            "SessionToken": "sandbox/" + secrets.token_urlsafe(48),
            "Expiration": format_seconds(expires),
        },
        "AssumedRoleUser": {
            "AssumedRoleId": f"AROA{account_id}SANDBOX:{wanted.session_name}",
            "Arn": f"arn:aws:sts::{account_id}:assumed-role/{wanted.role_name}/{wanted.session_name}",
        },
        "PackedPolicySize": 0,
    }


def caller_identity_answer(account_id: str, role_name: str = "", session_name: str = "") -> dict[str, Any]:
    """GetCallerIdentity: the sandbox user of the account, or the assumed role that signed."""
    if not role_name:
        return {"UserId": "AIDASANDBOX", "Account": account_id, "Arn": f"arn:aws:iam::{account_id}:user/sandbox"}
    return {
        "UserId": f"AROA{account_id}SANDBOX:{session_name}",
        "Account": account_id,
        "Arn": f"arn:aws:sts::{account_id}:assumed-role/{role_name}/{session_name}",
    }


# Organizations -----------------------------------------------------------------------------------


def listed_account(member_id: str, name: str, state: str, joined: datetime) -> dict[str, Any]:
    """One account as ListAccounts describes it (`Status` is the deprecated twin of `State`)."""
    return {
        "Id": member_id,
        "Arn": f"arn:aws:organizations::{ACCOUNT_ID}:account/{ORGANIZATION_ID}/{member_id}",
        "Email": f"aws+{member_id}@example.com",
        "Name": name,
        "Status": "ACTIVE" if state == "ACTIVE" else "SUSPENDED",
        "State": state,
        "JoinedMethod": "CREATED",
        "JoinedTimestamp": joined.timestamp(),
    }


def page_of(entries: list[dict[str, Any]], request: Mapping[str, Any], page_size: int) -> dict[str, Any]:
    """One page of ListAccounts: NextToken is the offset of the next entry."""
    try:
        start = int(request.get("NextToken") or 0)
        size = min(int(request.get("MaxResults") or page_size), page_size)
    except (TypeError, ValueError):
        raise IdentityError("InvalidInputException", "You provided an invalid value for NextToken.") from None
    page: dict[str, Any] = {"Accounts": entries[start : start + size]}
    if start + size < len(entries):
        page["NextToken"] = str(start + size)
    return page

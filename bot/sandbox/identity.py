"""STS and Organizations as the sandbox speaks them: the wire formats botocore reads, nothing more.

STS uses the query protocol (a form-encoded POST, answered in XML); Organizations is JSON 1.1
(`X-Amz-Target: AWSOrganizationsV20161128.<Operation>`). Which accounts exist and what they may do
is decided in bot.sandbox.accounts; this module only formats questions and answers.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
ORGANIZATIONS_TARGET_PREFIX = "AWSOrganizationsV20161128."
XML_CONTENT_TYPE = "text/xml"
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"

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

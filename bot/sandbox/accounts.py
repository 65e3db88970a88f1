"""Several emulated AWS accounts behind one sandbox: STS, Organizations, and AWS Support per account.

Account 1 (alias `sandbox`, ID 123456789012) is the sandbox itself and the organization's management
account: any credentials that are not the sandbox's own temporary ones act there, as before. Accounts
2…N (`sandbox-2`, …; IDs 200000000002, …) are further sandboxes with their own cases, checks, engineer,
faults and call counts, sharing the first one's clock. AssumeRole into any account's role answers a
temporary access key that names the account (ASIA + its 12-digit ID + 4 characters); a Support call
signed with it (SigV4's Credential=<key>/…) acts in that account, and is refused once the key expires
by the sandbox's clock. With events on, every account's case changes land in the first account's
queue, each event naming its own account, as an organisation-wide EventBridge rule delivers them.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from bot.sandbox import identity
from bot.sandbox.case_events import QUEUE_NAME, CaseEventEmitter
from bot.sandbox.faults import DroppedConnection
from bot.sandbox.identity import IdentityError
from bot.sandbox.state import ACCOUNT_ID

if TYPE_CHECKING:
    from bot.sandbox.server import SandboxServer

logger = logging.getLogger(__name__)

FIRST_ALIAS = "sandbox"
ACCOUNTS_CONTROL_PATH = "/_sandbox/accounts"
CONTROL_PREFIX = "/_sandbox/"
MAX_ACCOUNTS = 200
ORGANIZATIONS_PAGE_SIZE = 20  # ListAccounts' MaxResults is 1..20
TEMPORARY_KEY = re.compile(r"^ASIA(\d{12})[A-Z0-9]{4}$")
CREDENTIAL_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")
SUPPORT_JSON = "application/x-amz-json-1.1"


def account_alias(index: int) -> str:
    return FIRST_ALIAS if index == 1 else f"{FIRST_ALIAS}-{index}"


def account_id(index: int) -> str:
    return ACCOUNT_ID if index == 1 else f"2{index:011d}"


def account_count_from_env(env: Mapping[str, str]) -> int:
    """BOT_SANDBOX_ACCOUNTS: how many accounts to emulate (1 when unset); ValueError when unusable."""
    raw = (env.get("BOT_SANDBOX_ACCOUNTS") or "").strip() or "1"
    count = int(raw)
    if not 1 <= count <= MAX_ACCOUNTS:
        raise ValueError(f"BOT_SANDBOX_ACCOUNTS must be 1 to {MAX_ACCOUNTS}, not {raw}")
    return count


@dataclass
class EmulatedAccount:
    index: int
    alias: str
    account_id: str
    name: str
    server: SandboxServer
    joined: datetime


@dataclass(frozen=True)
class OrganizationMember:
    """An account ListAccounts names without the sandbox serving it (suspended, or just listed)."""

    account_id: str
    name: str
    state: str
    joined: datetime


@dataclass(frozen=True)
class IssuedKey:
    account_id: str
    role_name: str
    session_name: str
    expires: datetime


class SandboxAccounts:
    """The emulated accounts of one sandbox, its STS and Organizations endpoints, and their controls."""

    def __init__(self, primary: SandboxServer, count: int = 1, state_path: str | None = None) -> None:
        if not 1 <= count <= MAX_ACCOUNTS:
            raise ValueError(f"accounts must be 1 to {MAX_ACCOUNTS}")
        self._primary = primary
        self._lock = threading.Lock()
        now = primary.clock.now()
        self._accounts: list[EmulatedAccount] = [
            EmulatedAccount(1, account_alias(1), account_id(1), "Sandbox", primary, now)
        ]
        for index in range(2, count + 1):
            # The same class as the first: every control a test uses on the sandbox works per account.
            tenant = type(primary)(
                reply_delay_seconds=primary.reply_delay_seconds,
                latency_seconds=primary.latency_seconds,
                state_path=_tenant_path(state_path, account_alias(index)),
                clock=primary.clock,
            )
            tenant.state.account_id = account_id(index)
            if primary.sqs is not None:
                # One queue for every account's changes, each event naming its own account: what an
                # organisation-wide EventBridge rule with one SQS target delivers.
                tenant.case_events = CaseEventEmitter(tenant.state, primary.sqs.queue(QUEUE_NAME), account_id(index))
            joined = now + timedelta(seconds=index)
            self._accounts.append(
                EmulatedAccount(index, account_alias(index), account_id(index), f"Sandbox {index}", tenant, joined)
            )
        self._keys: dict[str, IssuedKey] = {}
        self._denied: set[str] = set()
        self._members: list[OrganizationMember] = []
        self.required_external_id: str | None = None
        self.page_size = ORGANIZATIONS_PAGE_SIZE
        self.calls: Counter[str] = Counter()
        self.assumed: Counter[str] = Counter()

    # Life and lookups ------------------------------------------------------------------------

    def start(self) -> None:
        for account in self._accounts[1:]:
            account.server.engineer.start()

    def stop(self) -> None:
        for account in self._accounts[1:]:
            account.server.engineer.stop()

    def __len__(self) -> int:
        return len(self._accounts)

    @property
    def all(self) -> list[EmulatedAccount]:
        return list(self._accounts)

    def find(self, alias_or_id: str) -> EmulatedAccount:
        for account in self._accounts:
            if alias_or_id in (account.alias, account.account_id):
                return account
        raise KeyError(f"no emulated account {alias_or_id!r}")

    def account(self, alias_or_id: str) -> SandboxServer:
        """The sandbox of one account: its cases, faults, replies and calls."""
        return self.find(alias_or_id).server

    # Controls --------------------------------------------------------------------------------

    def deny_assume_role(self, alias_or_id: str, denied: bool = True) -> None:
        """AssumeRole into this account answers AccessDenied (as a missing or untrusting role would)."""
        target = self.find(alias_or_id).account_id
        with self._lock:
            (self._denied.add if denied else self._denied.discard)(target)

    def require_external_id(self, value: str | None) -> None:
        """AssumeRole without this ExternalId answers AccessDenied, as a role whose trust policy asks for it."""
        self.required_external_id = value or None

    def add_organization_member(self, member_id: str, name: str, state: str = "ACTIVE") -> None:
        """List one more account in ListAccounts (not served: AssumeRole into it is denied)."""
        with self._lock:
            self._members.append(OrganizationMember(member_id, name, state, self._primary.clock.now()))

    def for_control(self, path: str) -> SandboxServer:
        """The account a control request names with ?account=<alias or ID> (the first without)."""
        chosen = parse_qs(urlsplit(path).query).get("account")
        if not chosen:
            return self._primary
        try:
            return self.account(chosen[-1])
        except KeyError as exc:
            raise ValueError(str(exc)) from None

    def describe(self) -> dict[str, Any]:
        with self._lock:
            denied = set(self._denied)
        return {
            "accounts": [
                {
                    "alias": a.alias,
                    "id": a.account_id,
                    "name": a.name,
                    "assume_role_denied": a.account_id in denied,
                    "cases": len(a.server.cases),
                }
                for a in self._accounts
            ],
            "required_external_id": self.required_external_id,
        }

    # HTTP ------------------------------------------------------------------------------------

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> bool:
        """Answer a POST that is not the first account's Support or control traffic; False: not ours."""
        path = urlsplit(handler.path).path
        if path.rstrip("/") == ACCOUNTS_CONTROL_PATH:
            self._control(handler, body)
            return True
        if path.startswith(CONTROL_PREFIX):
            return False
        key, service = _signature(handler.headers.get("Authorization", ""))
        target = handler.headers.get("X-Amz-Target", "")
        if service == "sts" or (not service and "x-www-form-urlencoded" in handler.headers.get("Content-Type", "")):
            self._sts(handler, key, body)
            return True
        operation = identity.organizations_operation(target)
        if service == "organizations" or operation is not None:
            self._organizations(handler, key, operation or "", body)
            return True
        try:
            caller = self._caller(key)
        except IdentityError as error:
            _write(handler, error.status, identity.json_error(error), SUPPORT_JSON)
            return True
        if caller.server is self._primary:
            return False
        try:
            status, payload = caller.server.handle_api(target, body)
        except DroppedConnection:
            handler.close_connection = True
            return True
        _write(handler, status, identity.json_answer(payload), SUPPORT_JSON)
        return True

    def _control(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        try:
            request = identity.organizations_request(body)
            if "deny" in request:
                self.deny_assume_role(str(request["deny"]))
            if "allow" in request:
                self.deny_assume_role(str(request["allow"]), denied=False)
            if "external_id" in request:
                self.require_external_id(request["external_id"])
            if "member" in request:
                member = request["member"]
                self.add_organization_member(str(member["id"]), str(member["name"]), str(member.get("state", "ACTIVE")))
        except (IdentityError, KeyError, TypeError) as exc:
            _write(handler, 400, identity.json_answer({"error": str(exc)}), "application/json")
            return
        _write(handler, 200, identity.json_answer(self.describe()), "application/json")

    # Who is calling --------------------------------------------------------------------------

    def _caller(self, key: str) -> EmulatedAccount:
        """The account a request acts in, from the access key that signed it."""
        match = TEMPORARY_KEY.match(key)
        if match is None:
            # The bot's own credentials, whatever they are: the management account.
            return self._accounts[0]
        with self._lock:
            issued = self._keys.get(key)
        if issued is not None and issued.expires <= self._primary.clock.now():
            raise IdentityError("ExpiredTokenException", "The security token included in the request is expired")
        try:
            return self.find(match.group(1))
        except KeyError:
            raise IdentityError(
                "UnrecognizedClientException", "The security token included in the request is invalid."
            ) from None

    # STS -------------------------------------------------------------------------------------

    def _sts(self, handler: BaseHTTPRequestHandler, key: str, body: bytes) -> None:
        request = identity.parse_query(body)
        action = request.get("Action", "")
        self._count(action)
        try:
            if action == "AssumeRole":
                result = self._assume_role(key, request)
            elif action == "GetCallerIdentity":
                result = self._caller_identity(key)
            else:
                raise IdentityError("InvalidAction", f"Could not find operation {action} for version 2011-06-15")
        except IdentityError as error:
            code = "ExpiredToken" if error.code == "ExpiredTokenException" else error.code
            code = "InvalidClientTokenId" if code == "UnrecognizedClientException" else code
            refusal = IdentityError(code, error.message)
            _write(handler, refusal.status, identity.sts_error(refusal), identity.XML_CONTENT_TYPE)
            return
        _write(handler, 200, identity.sts_answer(action, result), identity.XML_CONTENT_TYPE)

    def _assume_role(self, key: str, request: dict[str, str]) -> dict[str, Any]:
        caller = self._caller(key)
        wanted = identity.assume_role_request(request)
        denial = identity.access_denied(caller.account_id, wanted.role_arn)
        with self._lock:
            denied = wanted.account_id in self._denied
        if self.required_external_id and request.get("ExternalId") != self.required_external_id:
            raise denial
        try:
            target = self.find(wanted.account_id)
        except KeyError:
            raise denial from None
        if denied:
            raise denial
        access_key = identity.new_access_key(target.account_id)
        expires = self._primary.clock.now().replace(microsecond=0) + timedelta(seconds=wanted.duration)
        with self._lock:
            self._keys[access_key] = IssuedKey(target.account_id, wanted.role_name, wanted.session_name, expires)
            self.assumed[target.alias] += 1
        return identity.assumed_role_answer(target.account_id, wanted, access_key, expires)

    def _caller_identity(self, key: str) -> dict[str, Any]:
        caller = self._caller(key)
        with self._lock:
            issued = self._keys.get(key)
        if issued is None:
            return identity.caller_identity_answer(caller.account_id)
        return identity.caller_identity_answer(caller.account_id, issued.role_name, issued.session_name)

    # Organizations ---------------------------------------------------------------------------

    def _organizations(self, handler: BaseHTTPRequestHandler, key: str, operation: str, body: bytes) -> None:
        self._count(operation)
        try:
            if operation != "ListAccounts":
                raise IdentityError("UnknownOperationException", f"The sandbox does not emulate {operation!r}")
            if self._caller(key) is not self._accounts[0]:
                raise IdentityError("AccessDeniedException", "You don't have permissions to access this resource.")
            payload = self._list_accounts(identity.organizations_request(body))
        except IdentityError as error:
            _write(handler, error.status, identity.json_error(error), identity.JSON_CONTENT_TYPE)
            return
        _write(handler, 200, identity.json_answer(payload), identity.JSON_CONTENT_TYPE)

    def _list_accounts(self, request: dict[str, Any]) -> dict[str, Any]:
        entries = [identity.listed_account(a.account_id, a.name, "ACTIVE", a.joined) for a in self._accounts]
        with self._lock:
            entries += [identity.listed_account(m.account_id, m.name, m.state, m.joined) for m in self._members]
        return identity.page_of(entries, request, self.page_size)

    def _count(self, operation: str) -> None:
        with self._lock:
            self.calls[operation] += 1


def _signature(authorization: str) -> tuple[str, str]:
    """(access key, service) of a SigV4 Authorization header; ("", "") when it has none."""
    match = CREDENTIAL_SCOPE.search(authorization)
    return (match.group(1), match.group(2)) if match else ("", "")


def _tenant_path(state_path: str | None, alias: str) -> str | None:
    if not state_path:
        return None
    stem, dot, suffix = state_path.rpartition(".")
    return f"{stem}.{alias}.{suffix}" if dot and "/" not in suffix else f"{state_path}.{alias}"


def _write(handler: BaseHTTPRequestHandler, status: int, data: bytes, content_type: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    handler.send_header("x-amzn-RequestId", str(uuid.uuid4()))
    handler.end_headers()
    handler.wfile.write(data)

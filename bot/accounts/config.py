"""BOT_ACCOUNTS_FILE: which AWS accounts the bot serves, read and checked once at start.

Every mistake in the file is collected, not just the first, so one start tells the operator all of
them, each on its own line (the words are in templates/messages_accounts.txt.j2).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.config import ConfigError

DEFAULT_ALIAS = "default"
# Words the sub-commands read in the place of an account (`watch high all`, `digest off`, `account:all`).
RESERVED_ALIASES = frozenset({"all", "high", "off", "status", "schedule", "here"})
ALIAS_MAX = 32
ALIAS_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
ACCOUNT_ID_PATTERN = re.compile(r"^\d{12}$")
ROLE_ARN_PATTERN = re.compile(r"^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")
# IAM's own limits for a role name and for sts:AssumeRole's ExternalId.
ROLE_NAME_PATTERN = re.compile(r"^[\w+=,.@-]{1,64}$")
EXTERNAL_ID_PATTERN = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
# Public and private channels, and DMs (a slash command may come from any of them).
CHANNEL_PATTERN = re.compile(r"^[CGD][A-Z0-9]{2,20}$")

TOP_KEYS = ("defaults", "accounts", "organization")
DEFAULTS_KEYS = ("role_name", "external_id")
ACCOUNT_KEYS = ("alias", "id", "channels", "role_arn", "external_id")
ORGANIZATION_KEYS = ("discover", "alias_from")
ALIAS_SOURCES = ("name",)
_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


@dataclass(frozen=True)
class Account:
    """One AWS account the bot serves. `role_arn` None: the bot's own credentials (the default account)."""

    alias: str
    id: str
    role_arn: str | None = None
    external_id: str | None = field(default=None, repr=False)
    # None: every channel may use the account.
    channels: frozenset[str] | None = None

    def allowed_in(self, channel: str) -> bool:
        return self.channels is None or channel in self.channels


@dataclass(frozen=True)
class Defaults:
    role_name: str | None = None
    external_id: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Discovery:
    """[organization]: also serve every ACTIVE account organizations:ListAccounts names."""

    alias_from: str = "name"


@dataclass(frozen=True)
class AccountsConfig:
    accounts: tuple[Account, ...]
    defaults: Defaults = Defaults()
    discovery: Discovery | None = None
    # The file it came from; None: no file, the one account of the bot's own credentials.
    source: str | None = None
    partition: str = "aws"

    def role_arn_for(self, account_id: str) -> str | None:
        """The role a discovered account is entered through: [defaults] role_name in that account."""
        if not self.defaults.role_name:
            return None
        return f"arn:{self.partition}:iam::{account_id}:role/{self.defaults.role_name}"


class AccountsFileError(ConfigError):
    """BOT_ACCOUNTS_FILE cannot be used; `problems` holds one line per mistake."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = tuple(problems)
        super().__init__("accounts_file_invalid", path=path, problems=list(problems))


def single_account(alias: str = DEFAULT_ALIAS) -> AccountsConfig:
    """No BOT_ACCOUNTS_FILE: today's bot, the account of its own credentials (its ID asked of STS later)."""
    return AccountsConfig(accounts=(Account(alias=alias, id=""),))


def partition_of(region: str) -> str:
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws"


def accounts_config_from_env(env: Mapping[str, str] | None = None) -> AccountsConfig:
    env = os.environ if env is None else env
    path = env.get("BOT_ACCOUNTS_FILE", "").strip()
    if not path:
        return single_account()
    return load_accounts_file(path, partition=partition_of(env.get("AWS_SUPPORT_REGION", "").strip()))


def load_accounts_file(path: str, *, partition: str = "aws") -> AccountsConfig:
    from bot import render

    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise AccountsFileError(path, [render.text("accounts_file_missing", path=path)]) from None
    except OSError as exc:
        error = exc.strerror or type(exc).__name__
        raise AccountsFileError(path, [render.text("accounts_file_unreadable", path=path, error=error)]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AccountsFileError(path, [render.text("accounts_file_not_utf8", path=path)]) from None
    return parse_accounts(text, path=path, partition=partition)


def parse_accounts(text: str, *, path: str = "", partition: str = "aws") -> AccountsConfig:
    """The accounts of a TOML document, or AccountsFileError naming every mistake in it."""
    from bot import render

    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = _TOML_POSITION.search(message)
        reason = _TOML_POSITION.sub("", message).strip()
        line, column = (position.group(1), position.group(2)) if position else ("?", "?")
        problem = render.text("accounts_toml_syntax", line=line, column=column, error=reason)
        raise AccountsFileError(path, [problem]) from None
    reader = _Reader(partition)
    config = reader.read(document, path)
    if reader.problems:
        raise AccountsFileError(path, [render.text(key, **params) for key, params in reader.problems])
    return config


def slug(name: str) -> str:
    """An account name as an alias: lower case, runs of anything else as one hyphen, at most 32 characters."""
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return text[:ALIAS_MAX].rstrip("-")


class _Reader:
    """Walks the parsed document once, noting (message key, params) for every mistake it meets."""

    def __init__(self, partition: str) -> None:
        self.partition = partition
        self.problems: list[tuple[str, dict[str, Any]]] = []
        # A wrong [defaults] role_name is reported once, not again as "no role" for every account.
        self.role_name_refused = False

    def problem(self, message: str, /, **params: Any) -> None:
        self.problems.append((message, params))

    def read(self, document: dict[str, Any], path: str) -> AccountsConfig:
        self._unknown_keys(document, TOP_KEYS, where=_where("top"))
        defaults = self._defaults(self._table(document, "defaults"))
        discovery = self._organization(self._table(document, "organization"), defaults)
        accounts = self._accounts(document.get("accounts"), defaults)
        if not accounts and discovery is None and "accounts" not in document:
            self.problem("accounts_none")
        return AccountsConfig(
            accounts=tuple(accounts), defaults=defaults, discovery=discovery, source=path, partition=self.partition
        )

    def _table(self, document: dict[str, Any], name: str) -> dict[str, Any]:
        value = document.get(name, {})
        if not isinstance(value, dict):
            self.problem("accounts_not_a_table", name=name)
            return {}
        return value

    def _unknown_keys(self, table: dict[str, Any], allowed: tuple[str, ...], *, where: dict[str, Any]) -> None:
        for key in table:
            if key not in allowed:
                self.problem("accounts_unknown_key", key=key, allowed=list(allowed), **where)

    def _string(self, table: dict[str, Any], key: str, where: dict[str, Any]) -> str | None:
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.problem("accounts_not_a_string", key=key, **where)
            return None
        return value.strip()

    def _defaults(self, table: dict[str, Any]) -> Defaults:
        where = _where("defaults")
        self._unknown_keys(table, DEFAULTS_KEYS, where=where)
        role_name = self._string(table, "role_name", where)
        if role_name is not None and not ROLE_NAME_PATTERN.match(role_name):
            self.problem("accounts_bad_role_name", value=role_name, **where)
            self.role_name_refused = True
            role_name = None
        return Defaults(role_name=role_name, external_id=self._external_id(table, where))

    def _external_id(self, table: dict[str, Any], where: dict[str, Any]) -> str | None:
        external_id = self._string(table, "external_id", where)
        if external_id is not None and not EXTERNAL_ID_PATTERN.match(external_id):
            # Not echoed: whoever reads the log need not learn it.
            self.problem("accounts_bad_external_id", **where)
            return None
        return external_id

    def _organization(self, table: dict[str, Any], defaults: Defaults) -> Discovery | None:
        where = _where("organization")
        self._unknown_keys(table, ORGANIZATION_KEYS, where=where)
        discover = table.get("discover", False)
        if not isinstance(discover, bool):
            self.problem("accounts_not_a_boolean", key="discover", **where)
            discover = False
        alias_from = self._string(table, "alias_from", where) or "name"
        if alias_from not in ALIAS_SOURCES:
            self.problem("accounts_bad_alias_from", value=alias_from, allowed=list(ALIAS_SOURCES))
        if not discover:
            return None
        if not defaults.role_name:
            self.problem("accounts_discover_needs_role_name")
        return Discovery(alias_from=alias_from)

    def _accounts(self, entries: Any, defaults: Defaults) -> list[Account]:
        if entries is None:
            return []
        if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
            self.problem("accounts_not_a_table_array")
            return []
        if not entries:
            self.problem("accounts_none")
        accounts: list[Account] = []
        aliases: dict[str, int] = {}
        ids: dict[str, int] = {}
        for number, entry in enumerate(entries, start=1):
            account, alias, account_id = self._account(number, entry, defaults)
            where = _where("account", number=number, alias=alias or "")
            if alias is not None and alias in aliases:
                self.problem("accounts_duplicate_alias", first=aliases[alias], **where)
            if account_id is not None and account_id in ids:
                self.problem("accounts_duplicate_id", account_id=account_id, first=ids[account_id], **where)
            if alias is not None:
                aliases.setdefault(alias, number)
            if account_id is not None:
                ids.setdefault(account_id, number)
            if account is not None:
                accounts.append(account)
        return accounts

    def _account(
        self, number: int, entry: dict[str, Any], defaults: Defaults
    ) -> tuple[Account | None, str | None, str | None]:
        """The account (None when anything is wrong), and its alias and ID when those alone are right."""
        before = len(self.problems)
        alias_value = entry.get("alias")
        where = _where("account", number=number, alias=alias_value if isinstance(alias_value, str) else "")
        self._unknown_keys(entry, ACCOUNT_KEYS, where=where)
        alias = self._alias(entry, where)
        account_id = self._account_id(entry, where)
        role_arn = self._role_arn(entry, account_id, defaults, where)
        external_id = self._external_id(entry, where) or defaults.external_id
        channels = self._channels(entry, where)
        if len(self.problems) > before or alias is None or account_id is None or role_arn is None:
            return None, alias, account_id
        return Account(alias, account_id, role_arn, external_id, channels), alias, account_id

    def _alias(self, entry: dict[str, Any], where: dict[str, Any]) -> str | None:
        if "alias" not in entry:
            self.problem("accounts_no_alias", **where)
            return None
        alias = self._string(entry, "alias", where)
        if alias is None:
            return None
        if not ALIAS_PATTERN.match(alias):
            self.problem("accounts_bad_alias", value=alias, suggestion=slug(alias), **where)
            return None
        if alias in RESERVED_ALIASES:
            self.problem("accounts_reserved_alias", value=alias, reserved=sorted(RESERVED_ALIASES), **where)
            return None
        return alias

    def _account_id(self, entry: dict[str, Any], where: dict[str, Any]) -> str | None:
        value = entry.get("id")
        if value is None:
            self.problem("accounts_no_id", **where)
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            # TOML integers drop leading zeros, and many account IDs have them.
            self.problem("accounts_id_not_quoted", value=value, **where)
            return None
        if not isinstance(value, str) or not ACCOUNT_ID_PATTERN.match(value.strip()):
            self.problem("accounts_bad_id", value=str(value), **where)
            return None
        return value.strip()

    def _role_arn(
        self, entry: dict[str, Any], account_id: str | None, defaults: Defaults, where: dict[str, Any]
    ) -> str | None:
        role_arn = self._string(entry, "role_arn", where)
        if role_arn is None:
            if "role_arn" in entry:
                return None
            if not defaults.role_name:
                if not self.role_name_refused:
                    self.problem("accounts_no_role", **where)
                return None
            return f"arn:{self.partition}:iam::{account_id or '000000000000'}:role/{defaults.role_name}"
        match = ROLE_ARN_PATTERN.match(role_arn)
        if match is None:
            self.problem("accounts_bad_role_arn", value=role_arn, **where)
            return None
        if account_id is not None and match.group(2) != account_id:
            self.problem("accounts_role_in_other_account", value=role_arn, account_id=account_id, **where)
            return None
        return role_arn

    def _channels(self, entry: dict[str, Any], where: dict[str, Any]) -> frozenset[str] | None:
        if "channels" not in entry:
            return None
        value = entry["channels"]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.problem("accounts_channels_not_a_list", **where)
            return None
        if not value:
            self.problem("accounts_channels_empty", **where)
            return None
        bad = [item for item in value if not CHANNEL_PATTERN.match(item.strip())]
        for item in bad:
            self.problem("accounts_bad_channel", value=item, **where)
        return frozenset(item.strip() for item in value)


def _where(section: str, *, number: int = 0, alias: str = "") -> dict[str, Any]:
    """Where in the file a mistake is, as message parameters (the words are the template's)."""
    return {"section": section, "number": number, "alias": alias}

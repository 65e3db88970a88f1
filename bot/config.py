"""The environment, read once at start into one frozen, validated settings object."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# With live updates (BOT_EVENTS_QUEUE_URL) polling is only the backstop.
EVENTS_POLL_INTERVAL_SECONDS = 900
MAX_SANDBOX_ACCOUNTS = 200  # as the sandbox's own limit (bot.sandbox.accounts)


def is_postgres_url(value: str) -> bool:
    """PostgreSQL URLs as libpq reads them; Heroku and others still hand out the older `postgres://`."""
    return value.startswith(("postgresql://", "postgres://"))


class ConfigError(ValueError):
    """A setting is missing or malformed; the message (templates/messages.txt.j2) says which and what to do."""

    def __init__(self, key: str, **params: object) -> None:
        from bot import render

        self.key = key
        super().__init__(render.console_text(key, **params))


@dataclass(frozen=True)
class Settings:
    slack_bot_token: str = field(repr=False)
    slack_signing_secret: str = field(default="", repr=False)
    slack_app_token: str = field(default="", repr=False)
    slack_api_url: str = DEFAULT_SLACK_API_URL
    port: int = 3000
    db_path: str = "./data/bot.sqlite"
    poll_interval_seconds: float = 60.0
    # How long a work-journal record stays with a replica that stopped renewing it (died) before
    # another one takes it over.
    journal_lease_seconds: float = 60.0
    admins: frozenset[str] = frozenset()
    digest_timezone: str = "UTC"
    sandbox: bool = False
    aws_region: str = "us-east-1"
    log_level: str = "INFO"
    # The sandbox's engineer answers after this many seconds (below 0: never, tests answer themselves).
    sandbox_reply_seconds: float = 30.0
    sandbox_latency_seconds: float = 0.0
    # JSON file keeping the sandbox's cases across restarts; None: kept in memory only.
    sandbox_state_path: str | None = None
    # Holds the database password: kept out of repr and logs.
    database_url: str = field(default="", repr=False)
    events_queue_url: str = ""
    # BOT_ACCOUNTS_FILE ("": the one account of the bot's own credentials); read by bot.accounts.
    accounts_file: str = ""
    # BOT_SANDBOX_ACCOUNTS: how many accounts --sandbox emulates.
    sandbox_accounts: int = 1

    @property
    def events_on(self) -> bool:
        return bool(self.events_queue_url)

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token)

    def is_admin(self, user_id: str) -> bool:
        return user_id in self.admins


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def load_settings(
    env: Mapping[str, str] | None = None, *, sandbox: bool | None = None, require_slack: bool = True
) -> Settings:
    """Build Settings from the environment, refusing values the bot cannot run with."""
    env = os.environ if env is None else env
    token = env.get("SLACK_BOT_TOKEN", "").strip()
    app_token = env.get("SLACK_APP_TOKEN", "").strip()
    secret = env.get("SLACK_SIGNING_SECRET", "").strip()
    if require_slack:
        if not token:
            raise ConfigError("config_no_bot_token")
        if not app_token and not secret:
            raise ConfigError("config_no_secret")
        if app_token and not app_token.startswith("xapp-"):
            raise ConfigError("config_bad_app_token")

    try:
        port = int(env.get("PORT", "").strip() or "3000")
    except ValueError as exc:
        raise ConfigError("config_bad_port", value=env.get("PORT")) from exc
    check_port(port)

    events_queue_url = env.get("BOT_EVENTS_QUEUE_URL", "").strip()
    if events_queue_url and not events_queue_url.startswith(("https://", "http://")):
        raise ConfigError("config_bad_events_queue_url", value=events_queue_url[:200])
    # An empty value means the default, as for every other setting.
    default_interval = EVENTS_POLL_INTERVAL_SECONDS if events_queue_url else 60
    interval = _seconds(env, "POLL_INTERVAL_SECONDS", default_interval, minimum=1)
    journal_lease = _seconds(env, "BOT_JOURNAL_LEASE_SECONDS", 60.0, minimum=1)

    zone = env.get("DIGEST_TIMEZONE", "UTC").strip() or "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError("config_bad_zone", value=zone) from exc

    admins = frozenset(a.strip() for a in env.get("BOT_ADMINS", "").split(",") if a.strip())
    api_url = env.get("SLACK_API_URL", "").strip() or DEFAULT_SLACK_API_URL
    if not api_url.endswith("/"):
        api_url += "/"

    log_level = env.get("LOG_LEVEL", "").strip().upper() or "INFO"
    if log_level not in LOG_LEVELS:
        raise ConfigError("config_bad_log_level", value=env.get("LOG_LEVEL"), levels=LOG_LEVELS)

    db_path = env.get("BOT_DB_PATH", "").strip() or "./data/bot.sqlite"
    # Unset: next to the bot's own state; set but empty: no file at all.
    default_state = os.path.join(os.path.dirname(os.path.abspath(db_path)), "sandbox.json")
    state_path = env.get("BOT_SANDBOX_STATE", default_state).strip() or None

    database_url = env.get("DATABASE_URL", "").strip()
    if database_url and not is_postgres_url(database_url):
        # Only a scheme is echoed: the rest may hold a password.
        scheme = database_url.split("://", 1)[0][:20] if "://" in database_url else ""
        raise ConfigError("config_bad_database_url", scheme=scheme)

    raw_accounts = env.get("BOT_SANDBOX_ACCOUNTS", "").strip() or "1"
    try:
        sandbox_accounts = int(raw_accounts)
    except ValueError as exc:
        raise ConfigError("config_bad_sandbox_accounts", value=raw_accounts) from exc
    if not 1 <= sandbox_accounts <= MAX_SANDBOX_ACCOUNTS:
        raise ConfigError("config_bad_sandbox_accounts", value=raw_accounts)

    return Settings(
        slack_bot_token=token,
        slack_signing_secret=secret,
        slack_app_token=app_token,
        slack_api_url=api_url,
        port=port,
        db_path=db_path,
        poll_interval_seconds=interval,
        journal_lease_seconds=journal_lease,
        admins=admins,
        digest_timezone=zone,
        sandbox=_truthy(env.get("BOT_SANDBOX")) if sandbox is None else sandbox,
        aws_region=env.get("AWS_SUPPORT_REGION", "").strip() or "us-east-1",
        log_level=log_level,
        sandbox_reply_seconds=_seconds(env, "BOT_SANDBOX_REPLY_SECONDS", 30.0),
        sandbox_latency_seconds=_seconds(env, "BOT_SANDBOX_LATENCY_SECONDS", 0.0, minimum=0.0),
        sandbox_state_path=state_path,
        database_url=database_url,
        events_queue_url=events_queue_url,
        accounts_file=env.get("BOT_ACCOUNTS_FILE", "").strip(),
        sandbox_accounts=sandbox_accounts,
    )


def check_port(port: int) -> int:
    """A TCP port the bot can listen on (0 would pick a random one nobody knows)."""
    if not 1 <= port <= 65535:
        raise ConfigError("config_bad_port_range", value=port)
    return port


def _seconds(env: Mapping[str, str], name: str, default: float, *, minimum: float | None = None) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        raise ConfigError("config_bad_seconds", name=name, value=raw, minimum="" if minimum is None else f"{minimum:g}")
    return value

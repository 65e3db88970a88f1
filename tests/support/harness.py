"""A running bot for end-to-end tests: the real Bolt app behind waitress, FakeSlack, the AWS sandbox."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.web import stop_server
from tests.support.fake_slack import BOT_TOKEN, FakeSlack
from tests.support.http import HttpResponse, request
from tests.support.slack_requests import SlackRequests, new_event_id

SIGNING_SECRET = "test-secret"
ADMIN = "UADMIN"


def bot_env(fake_slack: FakeSlack, db_path: str | Path, overrides: dict[str, str | None] | None = None) -> dict:
    """The environment a test bot starts with; an override of None removes the variable."""
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "BOT_DB_PATH": str(db_path),
        "BOT_ADMINS": ADMIN,
        "POLL_INTERVAL_SECONDS": "1",
    }
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def write_accounts_file(path: str | Path, accounts: list[dict[str, Any]], *, role_name: str = "AwsSupportBot") -> str:
    """A BOT_ACCOUNTS_FILE naming `accounts` (alias, id, optional channels), every role `role_name`."""
    lines = ["[defaults]", f'role_name = "{role_name}"', ""]
    for account in accounts:
        lines += ["[[accounts]]", f'alias = "{account["alias"]}"', f'id = "{account["id"]}"']
        if account.get("channels"):
            lines.append("channels = [" + ", ".join(f'"{c}"' for c in account["channels"]) + "]")
        lines.append("")
    Path(path).write_text("\n".join(lines))
    return str(path)


@dataclass
class Delivery:
    """A message event delivered to the bot: keep it to redeliver the same event_id."""

    event: dict[str, Any]
    event_id: str
    response: HttpResponse


class BotHarness:
    """One bot process-in-a-thread. Build with `start()`, always `stop()` (the fixtures do)."""

    def __init__(
        self,
        *,
        slack: FakeSlack,
        sandbox: Any,
        db_path: str | Path,
        env: dict[str, str | None] | None = None,
        workers: bool = False,
        aws_attempts: int | None = None,
        events: Any = None,
    ) -> None:
        self.slack = slack
        self.sandbox = sandbox
        self.db_path = str(db_path)
        self.env = bot_env(slack, db_path, env)
        self.with_workers = workers
        self.aws_attempts = aws_attempts  # tries per AWS call; fewer make a throttling test quick
        self.events = events  # bootstrap.EventQueue for BOT_EVENTS_QUEUE_URL (its client and options)
        self.last_response_url: str | None = None
        self.services: Any = None
        self.app: Any = None
        self.settings: Any = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.requests: SlackRequests | None = None

    def start(self) -> BotHarness:
        from bot.app import build_app
        from bot.bootstrap import build_services, sandbox_gateway
        from bot.config import load_settings
        from bot.web import make_server, make_wsgi_app

        self.settings = load_settings(self.env)
        gateway = sandbox_gateway(self.sandbox.url, max_attempts=self.aws_attempts, region=self.settings.aws_region)
        # The sandbox also answers STS and Organizations: with BOT_ACCOUNTS_FILE or BOT_SANDBOX_ACCOUNTS
        # the bot assumes each account's role there, as against AWS.
        self.services = build_services(
            self.settings,
            gateway=gateway,
            aws_endpoint_url=self.sandbox.url,
            max_attempts=self.aws_attempts,
            events=self.events,
        )
        # Work after an ack waits for a lull in Slack's requests (0.1 s in production) and starts a job
        # every 5 ms; tests send one request at a time and wait for what it does, so shorter keeps
        # them quick.
        self.services.work.gate.settle_seconds = 0.01
        self.services.work.gate.pace_seconds = 0.001
        # A part whose answer AWS lost is looked for a minute before it is sent again; the sandbox has
        # done whatever it does long before a second (tests of that minute set their own).
        self.services.cases.replies.unclear_settle_seconds = 1.0
        self.services.cases.intake.unclear_settle_seconds = 1.0
        try:
            self.app = build_app(self.services)
            self._server = make_server(make_wsgi_app(self.app, self.services), port=0)
            self.url = f"http://127.0.0.1:{self._server.effective_port}"
            self._thread = threading.Thread(target=self._server.run, name="bot-http", daemon=True)
            self._thread.start()
            if self.with_workers:
                self.start_workers()
        except BaseException:
            self.services.close()
            self.services = None
            raise
        self.requests = SlackRequests(
            self.url, self.settings.slack_signing_secret, response_urls=self.slack.response_url
        )
        return self

    def start_workers(self) -> None:
        """Start the background workers (poller, scheduler), as `python -m bot` does."""
        self.services.start_workers()

    def stop(self) -> None:
        if self._server is not None:
            stop_server(self._server, self._thread)
            self._server = None
        if self.services is not None:
            self.services.close()
            self.services = None

    @property
    def events_url(self) -> str:
        return self.url + "/slack/events"

    # ------------------------------------------------------------------ conveniences

    def command(self, text: str, user: str = "U1", channel: str = "C1", **fields: Any) -> HttpResponse:
        """`/aws-support <text>` from `user` in `channel`; the response carries its `.response_url`."""
        response = self.requests.slash_command(text, user_id=user, channel_id=channel, **fields)
        self.last_response_url = response.response_url
        return response

    def wait_for_response(self, timeout: float = 10, response_url: str | None = None, count: int = 1) -> dict[str, Any]:
        """The `count`-th JSON body posted to `response_url` (default: the last command's)."""
        url = response_url or self.last_response_url
        assert url, "no command sent yet: give response_url"
        path = urlsplit(url).path
        calls = self.slack.wait_for("response_url", lambda c: c.path == path, count=count, timeout=timeout)
        return calls[count - 1].params

    def responses(self, response_url: str | None = None) -> list[dict[str, Any]]:
        url = response_url or self.last_response_url
        return self.slack.responses(url) if url else []

    def user_message(
        self,
        channel: str,
        text: str,
        *,
        user: str = "U1",
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> Delivery:
        """A person posts `text` (in a thread when `thread_ts`): recorded on FakeSlack, then delivered."""
        event = self.slack.add_message(channel, text, user=user, thread_ts=thread_ts, files=files, **extra)
        event_id = new_event_id()
        response = self.requests.event_callback(event, event_id=event_id)
        return Delivery(event=event, event_id=event_id, response=response)

    def redeliver(self, delivery: Delivery, retry_num: int = 1, retry_reason: str = "http_timeout") -> HttpResponse:
        """Slack's retry of an event: same event_id, X-Slack-Retry-Num/-Reason headers."""
        return self.requests.event_callback(
            delivery.event, event_id=delivery.event_id, retry_num=retry_num, retry_reason=retry_reason
        )

    def get(self, path: str) -> HttpResponse:
        return request("GET", self.url + path)

    def health(self) -> HttpResponse:
        return self.get("/healthz")

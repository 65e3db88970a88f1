"""Requests to the bot's /slack/events, built and signed exactly as Slack builds and signs them.

Slash commands are form-encoded fields; interactivity (block actions, view submissions, block
suggestions) is a form with one `payload=` field of JSON; the Events API posts JSON. Every request
carries `X-Slack-Request-Timestamp` and `X-Slack-Signature: v0=HMAC-SHA256(secret, "v0:{ts}:{body}")`.
`signing=` sends it "valid" (default), "unsigned", "wrong" (signed with another secret) or "stale"
(correctly signed, but with a timestamp six minutes old).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlencode

from tests.support.fake_slack import APP_ID, BOT_ID, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID
from tests.support.http import HttpResponse, request

Signing = Literal["valid", "unsigned", "wrong", "stale"]

COMMAND = "/aws-support"
# Slack still sends the deprecated verification token; Bolt ignores it when signatures are on.
VERIFICATION_TOKEN = "deprecated-verification-token"

_counter = itertools.count(1)


def _unique(prefix: str) -> str:
    return f"{prefix}{int(time.time())}{next(_counter):06d}"


def new_trigger_id() -> str:
    return f"{next(_counter)}.{int(time.time())}.{_unique('trig')}"


def new_event_id() -> str:
    return _unique("Ev")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def user_ref(user_id: str) -> dict[str, Any]:
    name = user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": TEAM_ID}


def team_ref() -> dict[str, Any]:
    return {"id": TEAM_ID, "domain": TEAM_DOMAIN}


def message_event(
    channel: str,
    text: str,
    *,
    user: str | None = "U1",
    ts: str | None = None,
    thread_ts: str | None = None,
    subtype: str | None = None,
    files: list[dict[str, Any]] | None = None,
    bot_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A `message` event as Slack delivers it (prefer FakeSlack.add_message, which also records it)."""
    ts = ts or f"{time.time():.6f}"
    event: dict[str, Any] = {"type": "message", "channel": channel, "text": text, "ts": ts, "event_ts": ts}
    event["channel_type"] = "im" if channel.startswith("D") else "channel"
    if user is not None:
        event["user"] = user
    if thread_ts:
        event["thread_ts"] = thread_ts
    if subtype:
        event["subtype"] = subtype
    if files:
        event["files"] = files
    if bot_id:
        event["bot_id"] = bot_id
    event.update(extra)
    return event


def message_changed_event(channel: str, message: dict[str, Any], new_text: str) -> dict[str, Any]:
    """What Slack sends when someone edits `message` (a message event dict)."""
    now = f"{time.time():.6f}"
    previous = {k: v for k, v in message.items() if k not in ("channel", "event_ts", "channel_type")}
    edited = dict(previous, text=new_text, edited={"user": message.get("user", ""), "ts": now})
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": channel,
        "ts": now,
        "event_ts": now,
        "channel_type": "channel",
        "message": edited,
        "previous_message": previous,
    }


def message_deleted_event(channel: str, message: dict[str, Any]) -> dict[str, Any]:
    now = f"{time.time():.6f}"
    previous = {k: v for k, v in message.items() if k not in ("channel", "event_ts", "channel_type")}
    return {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "channel": channel,
        "ts": now,
        "event_ts": now,
        "channel_type": "channel",
        "deleted_ts": message["ts"],
        "previous_message": previous,
    }


def button_action(action_id: str, value: str = "", *, block_id: str = "actions", text: str = "Button") -> dict:
    """One entry of a block_actions payload's `actions`, for a button."""
    return {
        "type": "button",
        "action_id": action_id,
        "block_id": block_id,
        "text": {"type": "plain_text", "text": text, "emoji": True},
        "value": value,
        "action_ts": f"{time.time():.6f}",
    }


def view_payload(
    view: dict[str, Any],
    *,
    values: dict[str, dict[str, Any]] | None = None,
    view_id: str | None = None,
    hash: str | None = None,  # noqa: A002 - Slack's field name
) -> dict[str, Any]:
    """The `view` object Slack sends back: what the bot opened plus id, hash and state.values.

    `view` may be a view as recorded by FakeSlack (it already has id and hash) or the bot's template.
    """
    full = {
        "id": view_id or view.get("id") or _unique("V"),
        "team_id": TEAM_ID,
        "type": "modal",
        "private_metadata": "",
        "callback_id": "",
        "external_id": "",
        "hash": hash or view.get("hash") or f"{int(time.time())}.abc",
        "app_id": APP_ID,
        "bot_id": BOT_ID,
        "clear_on_close": False,
        "notify_on_close": False,
        "previous_view_id": None,
        **{k: v for k, v in view.items() if k not in ("id", "hash", "state")},
    }
    full.setdefault("root_view_id", full["id"])
    full["state"] = {"values": values if values is not None else view.get("state", {}).get("values", {})}
    return full


class SlackRequests:
    """Sends Slack's requests to one bot. `response_urls` makes a fresh response URL per request."""

    def __init__(
        self,
        base_url: str,
        signing_secret: str,
        *,
        response_urls: Callable[[], str] | None = None,
        path: str = "/slack/events",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.events_url = self.base_url + path
        self.signing_secret = signing_secret
        self._response_urls = response_urls

    # ------------------------------------------------------------------ transport

    def post(
        self,
        body: bytes,
        content_type: str,
        *,
        signing: Signing = "valid",
        headers: dict[str, str] | None = None,
        timeout: float = 15,
    ) -> HttpResponse:
        """POST raw bytes to /slack/events, signed as asked."""
        sent = self._headers(body, content_type, signing, headers)
        return request("POST", self.events_url, data=body, headers=sent, timeout=timeout)

    def _headers(
        self, body: bytes, content_type: str, signing: Signing, headers: dict[str, str] | None
    ) -> dict[str, str]:
        now = int(time.time())
        timestamp = str(now - 6 * 60 if signing == "stale" else now)
        sent = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
        if signing != "unsigned":
            secret = self.signing_secret if signing != "wrong" else self.signing_secret + "-wrong"
            sent["X-Slack-Request-Timestamp"] = timestamp
            sent["X-Slack-Signature"] = sign(secret, timestamp, body)
        sent.update(headers or {})
        return sent

    def post_form(self, fields: dict[str, Any], **kwargs: Any) -> HttpResponse:
        return self.post(urlencode(fields).encode(), "application/x-www-form-urlencoded", **kwargs)

    def post_payload(self, payload: dict[str, Any], **kwargs: Any) -> HttpResponse:
        """Interactivity: one form field `payload` holding JSON."""
        return self.post_form({"payload": json.dumps(payload)}, **kwargs)

    def post_json(self, payload: dict[str, Any], **kwargs: Any) -> HttpResponse:
        return self.post(json.dumps(payload).encode(), "application/json", **kwargs)

    def _response_url(self, given: str | None) -> str:
        if given is not None:
            return given
        if self._response_urls is not None:
            return self._response_urls()
        return "https://hooks.slack.invalid/commands/none"

    # ------------------------------------------------------------------ slash commands

    def slash_command(
        self,
        text: str,
        *,
        user_id: str = "U1",
        channel_id: str = "C1",
        command: str = COMMAND,
        response_url: str | None = None,
        trigger_id: str | None = None,
        signing: Signing = "valid",
        **fields: Any,
    ) -> HttpResponse:
        """The response's `.response_url` is the URL Slack would accept the delayed answers on."""
        response_url = self._response_url(response_url)
        form = self._slash_command_form(text, user_id, channel_id, command, response_url, trigger_id, fields)
        response = self.post_form(form, signing=signing)
        response.response_url = response_url
        response.extra["trigger_id"] = form["trigger_id"]
        return response

    def prepare_slash_command(self, text: str, response_url: str | None = None) -> tuple[bytes, dict[str, str]]:
        """A slash command's body and signed headers, to be sent later (by another client, or again: a replay)."""
        form = self._slash_command_form(text, "U1", "C1", COMMAND, self._response_url(response_url), None, {})
        body = urlencode(form).encode()
        return body, self._headers(body, "application/x-www-form-urlencoded", "valid", None)

    def _slash_command_form(
        self,
        text: str,
        user_id: str,
        channel_id: str,
        command: str,
        response_url: str,
        trigger_id: str | None,
        fields: dict[str, Any],
    ) -> dict[str, Any]:
        return {
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM_ID,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel_id,
            "channel_name": f"channel-{channel_id.lower()}",
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id or new_trigger_id(),
            **fields,
        }

    # ------------------------------------------------------------------ interactivity

    def block_actions(
        self,
        actions: list[dict[str, Any]] | dict[str, Any],
        *,
        user_id: str = "U1",
        channel_id: str | None = "C1",
        message: dict[str, Any] | None = None,
        view: dict[str, Any] | None = None,
        response_url: str | None = None,
        trigger_id: str | None = None,
        state_values: dict[str, Any] | None = None,
        signing: Signing = "valid",
        **fields: Any,
    ) -> HttpResponse:
        """A click in a message (give `message`, as FakeSlack recorded it) or in a modal (give `view`)."""
        actions = [actions] if isinstance(actions, dict) else actions
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": user_ref(user_id),
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "trigger_id": trigger_id or new_trigger_id(),
            "team": team_ref(),
            "enterprise": None,
            "is_enterprise_install": False,
            "state": {"values": state_values or {}},
            "actions": actions,
        }
        if view is not None:
            full_view = view_payload(view, values=state_values)
            payload["container"] = {"type": "view", "view_id": full_view["id"]}
            payload["view"] = full_view
        else:
            message = message or {"type": "message", "ts": f"{time.time():.6f}", "text": ""}
            response_url = self._response_url(response_url)
            payload["container"] = {
                "type": "message",
                "message_ts": message["ts"],
                "channel_id": channel_id,
                "is_ephemeral": False,
            }
            if message.get("thread_ts"):
                payload["container"]["thread_ts"] = message["thread_ts"]
            payload["channel"] = {"id": channel_id, "name": f"channel-{str(channel_id).lower()}"}
            payload["message"] = {k: v for k, v in message.items() if k not in ("channel",)}
            payload["response_url"] = response_url
        payload.update(fields)
        response = self.post_payload(payload, signing=signing)
        response.response_url = payload.get("response_url")
        response.extra["trigger_id"] = payload["trigger_id"]
        return response

    def view_submission(
        self,
        view: dict[str, Any],
        *,
        values: dict[str, dict[str, Any]] | None = None,
        user_id: str = "U1",
        trigger_id: str | None = None,
        signing: Signing = "valid",
        **fields: Any,
    ) -> HttpResponse:
        """Submit a modal. `values` is Slack's state.values: {block_id: {action_id: {type, value…}}}."""
        payload = {
            "type": "view_submission",
            "team": team_ref(),
            "user": user_ref(user_id),
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "trigger_id": trigger_id or new_trigger_id(),
            "view": view_payload(view, values=values),
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
            **fields,
        }
        return self.post_payload(payload, signing=signing)

    def view_closed(self, view: dict[str, Any], *, user_id: str = "U1", signing: Signing = "valid") -> HttpResponse:
        payload = {
            "type": "view_closed",
            "team": team_ref(),
            "user": user_ref(user_id),
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "view": view_payload(view),
            "is_cleared": False,
            "is_enterprise_install": False,
        }
        return self.post_payload(payload, signing=signing)

    def block_suggestion(
        self,
        action_id: str,
        value: str,
        *,
        view: dict[str, Any] | None = None,
        block_id: str = "",
        user_id: str = "U1",
        signing: Signing = "valid",
        **fields: Any,
    ) -> HttpResponse:
        """What Slack asks an external_select for as the person types `value`; the body holds options."""
        payload: dict[str, Any] = {
            "type": "block_suggestion",
            "user": user_ref(user_id),
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "action_id": action_id,
            "block_id": block_id,
            "value": value,
            "team": team_ref(),
            "enterprise": None,
            "is_enterprise_install": False,
        }
        if view is not None:
            full_view = view_payload(view)
            payload["container"] = {"type": "view", "view_id": full_view["id"]}
            payload["view"] = full_view
        payload.update(fields)
        return self.post_payload(payload, signing=signing)

    # ------------------------------------------------------------------ Events API

    def event_callback(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        signing: Signing = "valid",
        **fields: Any,
    ) -> HttpResponse:
        """Deliver one event; give the same `event_id` with `retry_num` to redeliver it as Slack does."""
        event_id = event_id or new_event_id()
        envelope = {
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM_ID,
            "context_team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(float(event.get("event_ts") or event.get("ts") or time.time())),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": _unique("4-eyJ"),
            **fields,
        }
        headers = {}
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        response = self.post_json(envelope, signing=signing, headers=headers)
        response.extra["event_id"] = event_id
        return response

    def url_verification(self, challenge: str = "challenge-token", signing: Signing = "valid") -> HttpResponse:
        payload = {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
        return self.post_json(payload, signing=signing)

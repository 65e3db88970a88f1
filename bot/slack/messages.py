"""Slack messages for the domain: post (with metadata), update, ephemeral notes, reactions, and
finding a message the bot posted by its metadata. Slack's errors become BotErrors here.

A dropped connection or a 5xx may come after Slack stored a message, so a post that fails that
way raises SlackUnclear: the caller looks for the message (by its metadata) before posting again.
A 429 is resent by the client itself; one that outlasts its retries is SlackBusy, worth retrying.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import BotError, slack_error

logger = logging.getLogger(__name__)

HISTORY_LIMIT = 100


class SlackPostFailed(BotError):
    """Slack refused a message (not in channel, archived, ...): a person can act on it."""

    key = "slack_post_failed"
    retryable = False


class SlackBusy(SlackPostFailed):
    """Slack rate-limited us past the client's own retries: nothing was posted, try again later."""

    retryable = True


class SlackUnclear(SlackPostFailed):
    """The answer was lost: the message may be in Slack. Look for it before posting again."""

    retryable = True


def _failure(exc: Exception, channel: str) -> SlackPostFailed:
    if isinstance(exc, SlackApiError):
        error = slack_error(exc)
        status = getattr(exc.response, "status_code", 200)
        if error == "ratelimited" or status == 429:
            return SlackBusy(error=error, channel=channel)
        if status >= 500:
            return SlackUnclear(error=error, channel=channel)
        return SlackPostFailed(error=error, channel=channel)
    return SlackUnclear(error=type(exc).__name__, channel=channel)


class SlackMessages:
    def __init__(self, client: WebClient) -> None:
        self.client = client

    def post(
        self,
        channel: str,
        *,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> tuple[str, str]:
        """Post a message; returns (channel ID, ts)."""
        params: dict[str, Any] = {"channel": channel, "text": text}
        if blocks is not None:
            params["blocks"] = blocks
        if thread_ts:
            params["thread_ts"] = thread_ts
        if metadata is not None:
            params["metadata"] = metadata
        try:
            response = self.client.chat_postMessage(**params)
        except (SlackApiError, OSError) as exc:
            raise _failure(exc, channel) from exc
        return response["channel"], response["ts"]

    def update(self, channel: str, ts: str, *, text: str, blocks: list[dict[str, Any]]) -> bool:
        """Redraw a message in place; False (logged) when Slack refused (deleted, channel left)."""
        try:
            self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
        except (SlackApiError, OSError) as exc:
            logger.warning("could not update %s in %s: %s", ts, channel, slack_error(exc))
            return False
        return True

    def tell(self, channel: str, user: str, text: str, *, thread_ts: str = "") -> None:
        """An ephemeral note to the person in the channel (in a thread, when given); a DM when the bot
        cannot post there."""
        try:
            if thread_ts:
                self.client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
            else:
                self.client.chat_postEphemeral(channel=channel, user=user, text=text)
        except (SlackApiError, OSError):
            try:
                self.client.chat_postMessage(channel=user, text=text)
            except (SlackApiError, OSError) as exc:
                logger.warning("could not tell %s: %s", user, slack_error(exc))

    def react(self, channel: str, ts: str, name: str) -> None:
        """Add a reaction; one already there counts as done. Busy or unclear: raised, to retry."""
        try:
            self.client.reactions_add(channel=channel, timestamp=ts, name=name)
        except (SlackApiError, OSError) as exc:
            if slack_error(exc) == "already_reacted":
                return
            failure = _failure(exc, channel)
            if failure.retryable:
                raise failure from exc
            logger.warning("could not react in %s: %s", channel, slack_error(exc))

    def find(
        self,
        channel: str,
        event_type: str,
        match: dict[str, Any],
        *,
        thread_ts: str = "",
        oldest: float | None = None,
    ) -> str | None:
        """The ts of a message the bot posted with this metadata: in the thread, when given; else among
        the channel's last messages, or all of them since `oldest` (epoch seconds), when given.

        Raises SlackUnclear when Slack cannot be read: not knowing, posting again could double it.
        """
        for message in self._messages(channel, thread_ts, oldest):
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == event_type and all(payload.get(k) == v for k, v in match.items()):
                return message.get("ts")
        return None

    def _messages(self, channel: str, thread_ts: str, oldest: float | None) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            try:
                if thread_ts:
                    response = self.client.conversations_replies(
                        channel=channel, ts=thread_ts, limit=HISTORY_LIMIT * 10, include_all_metadata=True
                    )
                elif oldest is None:
                    response = self.client.conversations_history(
                        channel=channel, limit=HISTORY_LIMIT, include_all_metadata=True
                    )
                else:
                    response = self.client.conversations_history(
                        channel=channel,
                        oldest=f"{max(oldest, 0):.6f}",
                        limit=HISTORY_LIMIT * 2,
                        cursor=cursor,
                        include_all_metadata=True,
                    )
            except (SlackApiError, OSError) as exc:
                raise SlackUnclear(error=slack_error(exc), channel=channel) from exc
            yield from response.get("messages") or []
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if oldest is None or thread_ts or not cursor:
                return

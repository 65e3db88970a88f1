"""The Web API calls the poller, the watches and the digests make in channels and threads.

The domain packages (sync/, digest/) never see slack_sdk: a call Slack answers with an error raises
SlackRefused, which carries Slack's error code and HTTP status for them to decide what it means
(skip a dead thread, stop the cycle, tell the person).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import SlackError, slack_error

# Errors that mean this thread cannot take the message, now or later.
THREAD_GONE_ERRORS = frozenset(
    {
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "thread_not_found",
        "message_not_found",
        "restricted_action",
        "restricted_action_thread_only",
        "restricted_action_read_only_channel",
        "no_permission",
        "ekm_access_denied",
        "team_access_not_granted",
        "cannot_reply_to_message",
    }
)
# Errors that concern the whole bot (its token or scopes), whatever the channel.
BOT_WIDE_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "missing_scope"}
)


class SlackRefused(SlackError):
    """Slack answered a Web API call with an error."""

    def __init__(self, error: str, status: int = 200) -> None:
        super().__init__(error=error)
        self.error = error
        self.status = status

    @property
    def thread_gone(self) -> bool:
        """This thread (or channel) cannot take messages, now or later; other threads may."""
        return self.status < 400 and self.error in THREAD_GONE_ERRORS

    @property
    def bot_wide(self) -> bool:
        """Only the workspace's admins can fix this (a revoked token, a missing scope)."""
        return self.error in BOT_WIDE_ERRORS


@contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except SlackApiError as exc:
        status = int(getattr(exc.response, "status_code", 200) or 200)
        raise SlackRefused(slack_error(exc), status) from exc


@dataclass(frozen=True)
class Upload:
    """A file Slack has given an ID and an upload URL, not yet shared anywhere."""

    file_id: str
    url: str


class Channels:
    """Posts, reads back and uploads in channels and threads.

    `posting` sends the messages and file shares: a client that is never resent blindly (only a 429
    is resent), because a 5xx or a dropped connection may come after Slack stored the message; the
    callers reconcile instead. `client` does the rest (reads, which are safe to repeat).
    """

    def __init__(self, client: WebClient, *, posting: WebClient | None = None) -> None:
        self.client = client
        self.posting = posting or client

    # Messages

    def post(
        self,
        channel: str,
        *,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
        join: bool = False,
    ) -> str:
        """chat.postMessage; returns the message's ts. With `join`, a public channel the bot is not
        in is joined once and the post tried again."""
        kwargs: dict[str, Any] = {
            "channel": channel,
            "text": text,
            # AWS text and digests carry URLs: they show as written and never unfold into previews.
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if blocks is not None:
            kwargs["blocks"] = blocks
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        if metadata is not None:
            kwargs["metadata"] = metadata
        try:
            with _refusals():
                return str(self.posting.chat_postMessage(**kwargs).get("ts", ""))
        except SlackRefused as refused:
            if not (join and refused.error == "not_in_channel" and self._join(channel)):
                raise
        with _refusals():
            return str(self.posting.chat_postMessage(**kwargs).get("ts", ""))

    def _join(self, channel: str) -> bool:
        try:
            self.client.conversations_join(channel=channel)
        except SlackApiError:
            return False
        return True

    def delete(self, channel: str, ts: str) -> None:
        with _refusals():
            self.client.chat_delete(channel=channel, ts=ts)

    def thread_since(self, channel: str, thread_ts: str, oldest: float) -> Iterator[dict[str, Any]]:
        """The messages of a thread posted since `oldest` (epoch seconds), metadata included."""
        return self._pages("conversations_replies", channel=channel, ts=thread_ts, oldest=oldest)

    def channel_since(self, channel: str, oldest: float) -> Iterator[dict[str, Any]]:
        """The messages of a channel posted since `oldest` (epoch seconds), metadata included."""
        return self._pages("conversations_history", channel=channel, oldest=oldest)

    def _pages(self, method: str, *, oldest: float, **params: Any) -> Iterator[dict[str, Any]]:
        call = getattr(self.client, method)
        cursor = None
        while True:
            with _refusals():
                response = call(
                    include_all_metadata=True, oldest=f"{max(oldest, 0):.6f}", limit=200, cursor=cursor, **params
                )
            yield from response.get("messages") or []
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return

    # Files

    def start_upload(self, filename: str, length: int) -> Upload:
        """An ID and URL for a file (files.getUploadURLExternal): record the ID before finishing, so
        that file_shared() can tell after a crash whether the share happened."""
        with _refusals():
            response = self.client.files_getUploadURLExternal(filename=filename, length=length)
        return Upload(file_id=str(response["file_id"]), url=str(response["upload_url"]))

    def finish_upload(self, upload: Upload, data: bytes, *, title: str, channel: str, thread_ts: str) -> None:
        """Send the bytes, then share the file in the thread (files.completeUploadExternal)."""
        request = urllib.request.Request(upload.url, data=data, method="POST")
        request.add_header("Content-Type", "application/octet-stream")
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - Slack's own upload URL
            response.read()
        with _refusals():
            self.posting.files_completeUploadExternal(
                files=[{"id": upload.file_id, "title": title}], channel_id=channel, thread_ts=thread_ts
            )

    def file_shared(self, file_id: str) -> bool:
        """Whether an uploaded file was shared anywhere (False when Slack never completed it)."""
        try:
            with _refusals():
                file = self.client.files_info(file=file_id)["file"]
        except SlackRefused as refused:
            if refused.error == "file_not_found":
                return False
            raise
        return bool(file.get("shares") or file.get("channels") or file.get("groups"))

    def upload_text(
        self, channel: str, *, thread_ts: str, filename: str, content: str, title: str, comment: str
    ) -> None:
        """A text file (a CSV) shared in a thread, with a comment."""
        with _refusals():
            self.client.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                filename=filename,
                content=content,
                title=title,
                initial_comment=comment,
            )

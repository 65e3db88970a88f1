"""Files people attach in Slack, downloaded with the bot token, which goes to Slack's file host alone.

The token is sent only to `https://files.slack.com` (the one file host slack_sdk knows) or to the
origin of SLACK_API_URL itself (scheme, host and port), which the operator already trusts with the
token on every API call; that second rule is what lets the tests' fake Slack on 127.0.0.1 serve files.
A redirect is followed without the token: wherever Slack hands a download on to, it gets none.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import BotError

SLACK_FILE_HOSTS = frozenset({"files.slack.com"})
MAX_REDIRECTS = 3
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass
class SlackFile:
    """A file a person attached in Slack, to be downloaded with the bot token."""

    file_id: str
    name: str
    size: int
    url: str

    @classmethod
    def from_payload(cls, raw: dict[str, Any]) -> SlackFile:
        return cls(
            file_id=raw.get("id", ""),
            name=raw.get("name") or raw.get("title") or "attachment",
            size=int(raw.get("size") or 0),
            url=raw.get("url_private_download") or raw.get("url_private") or "",
        )


def _origin(parts: SplitResult) -> tuple[str, str, int | None] | None:
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # a port that is not a number
        return None
    if parts.username is not None or parts.password is not None:
        return None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def may_carry_token(url: str, api_url: str) -> bool:
    """True when `url` is on Slack's file host over https, or on SLACK_API_URL's own origin."""
    origin = _origin(urlsplit(url))
    if origin is None or not origin[1]:
        return False
    if origin == _origin(urlsplit(api_url)):
        return True
    return origin[0] == "https" and origin[1] in SLACK_FILE_HOSTS and origin[2] == 443


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # urllib would resend every header, Authorization included, to wherever a redirect points.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


class SlackFiles:
    """Downloads shared files; the one place that decides where the bot token may go."""

    def __init__(self, client: WebClient, token: str, api_url: str) -> None:
        self.client = client
        self.token = token
        self.api_url = api_url

    def download(self, file: SlackFile, max_bytes: int) -> bytes:
        """The file's bytes, at most `max_bytes + 1` of them, so the caller can tell it is too large."""
        if not file.url:
            try:
                file = SlackFile.from_payload(self.client.files_info(file=file.file_id)["file"])
            except (SlackApiError, OSError) as exc:
                raise BotError("file_download_failed", name=file.name) from exc
        if not may_carry_token(file.url, self.api_url):
            # A forged payload must not make us send the token elsewhere.
            raise BotError("file_download_failed", name=file.name)
        url, headers = file.url, {"Authorization": f"Bearer {self.token}"}
        try:
            for _ in range(MAX_REDIRECTS + 1):
                location = self._fetch(url, headers, max_bytes)
                if isinstance(location, bytes):
                    return location
                url, headers = location, {}
        except OSError as exc:
            raise BotError("file_download_failed", name=file.name) from exc
        raise BotError("file_download_failed", name=file.name)

    def _fetch(self, url: str, headers: dict[str, str], max_bytes: int) -> bytes | str:
        """The body, or the absolute URL a redirect points to."""
        if urlsplit(url).scheme not in _DEFAULT_PORTS:
            raise OSError(f"not an http(s) URL: {urlsplit(url).scheme}")
        request = urllib.request.Request(url, headers=headers)
        try:
            with _opener.open(request, timeout=30) as response:  # noqa: S310 - scheme checked above
                return response.read(max_bytes + 1)
        except urllib.error.HTTPError as error:
            with error:
                location = error.headers.get("Location") if error.code in REDIRECT_CODES else None
                if not location:
                    raise
                return urljoin(url, location)

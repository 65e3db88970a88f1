"""A small stdlib HTTP client for tests: never goes through a proxy, never raises on 4xx/5xx."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Tests talk to 127.0.0.1 only; a developer's HTTP(S)_PROXY must not capture that traffic.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Headers(dict):
    """A dict of HTTP headers whose lookups ignore case, as HTTP does."""

    def __init__(self, items: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> None:
        super().__init__()
        pairs = items.items() if isinstance(items, Mapping) else items
        for key, value in pairs:
            self[key] = value

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key.lower(), value)

    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


@dataclass
class HttpResponse:
    """What came back: status, headers, the raw text and the body parsed as JSON when it is JSON."""

    status: int
    headers: Headers
    text: str
    body: Any = None
    elapsed: float = 0.0  # seconds from sending to the whole body read (Slack gives up after 3)
    # Set by the builders that send something a test may want to follow up on.
    response_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def json(self) -> Any:
        if isinstance(self.body, (dict, list)):
            return self.body
        raise AssertionError(f"response is not JSON (status {self.status}): {self.text[:500]!r}")


def parse_body(text: str, content_type: str) -> Any:
    if "json" in content_type or text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def request(
    method: str,
    url: str,
    *,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 15,
) -> HttpResponse:
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    started = time.monotonic()
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            status, raw_headers, raw = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as error:
        status, raw_headers, raw = error.code, error.headers, error.read()
    response_headers = Headers(raw_headers.items())
    text = raw.decode("utf-8", errors="replace")
    return HttpResponse(
        status=status,
        headers=response_headers,
        text=text,
        body=parse_body(text, response_headers.get("content-type", "")),
        elapsed=time.monotonic() - started,
    )

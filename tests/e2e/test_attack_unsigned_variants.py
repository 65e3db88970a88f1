"""Bolt no longer checks signatures itself: no shape of an unsigned request may reach it past web.SlackDoor."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from tests.support.harness import BotHarness

_COMMAND = (
    b"command=%2Faws-support&text=list+all&user_id=UADMIN&channel_id=C1&response_url=http%3A%2F%2F127.0.0.1%3A1%2Fx"
)
_CHALLENGE = json.dumps({"type": "url_verification", "token": "t", "challenge": "pwned"}).encode()


def _raw(bot: BotHarness, head: bytes, body: bytes = b"") -> bytes:
    netloc = urlsplit(bot.url).netloc
    host, port = netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.replace(b"HOST", netloc.encode()) + body)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _post(target: bytes, body: bytes, content_type: bytes, method: bytes = b"POST", extra: bytes = b"") -> bytes:
    return (
        method + b" " + target + b" HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n"
        b"Content-Type: " + content_type + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n" + extra + b"\r\n"
    )


TARGETS = [
    b"/slack/events",
    b"/slack/events/",
    b"/slack/events?x=1",
    b"//slack/events",
    b"/slack//events",
    b"/slack/./events",
    b"/slack/%65vents",
    b"/SLACK/EVENTS",
    b"http://HOST/slack/events",
    b"/healthz/../slack/events",
    b"/slack/events#frag",
    b"/slack/events;x",
]


@pytest.mark.parametrize("method", [b"POST", b"post", b"PUT", b"HEAD", b"GET"])
@pytest.mark.parametrize("target", TARGETS)
def test_no_unsigned_request_reaches_bolt(bot: BotHarness, method: bytes, target: bytes) -> None:
    for body, ctype in ((_CHALLENGE, b"application/json"), (_COMMAND, b"application/x-www-form-urlencoded")):
        reply = _raw(
            bot,
            _post(
                target,
                body,
                ctype,
                method,
                b"X-Slack-Request-Timestamp: 1\r\nX-Slack-Signature: v0=00\r\nX-Slack-Retry-Num: 1\r\n",
            ),
            body,
        )
        status = reply.split(b"\r\n", 1)[0]
        assert b"pwned" not in reply, (target, method, reply[:300])
        assert b" 200 " not in status and b" 500 " not in status, (target, method, reply[:300])
    bot.slack.assert_no_calls(within=0.1)
    assert sum(bot.sandbox.calls.values()) == 0


def test_chunked_unsigned_request_never_reaches_bolt(bot: BotHarness) -> None:
    body = _CHALLENGE
    head = (
        b"POST /slack/events HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunked = hex(len(body))[2:].encode() + b"\r\n" + body + b"\r\n0\r\n\r\n"
    reply = _raw(bot, head, chunked)
    assert b"pwned" not in reply and reply.startswith(b"HTTP/1.1 401"), reply[:300]


def test_the_probe_can_see_bolt_answer_a_signed_challenge(bot: BotHarness) -> None:
    """Control: the same probe, signed, does reach Bolt (so the refusals above are the door's)."""
    import time

    from tests.support.slack_requests import sign

    stamp = str(int(time.time()))
    signature = sign(bot.requests.signing_secret, stamp, _CHALLENGE)
    extra = f"X-Slack-Request-Timestamp: {stamp}\r\nX-Slack-Signature: {signature}\r\n".encode()
    reply = _raw(bot, _post(b"/slack/events", _CHALLENGE, b"application/json", extra=extra), _CHALLENGE)
    assert b"pwned" in reply, reply[:300]

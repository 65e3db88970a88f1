"""The bot token goes only to Slack's file host over https (or SLACK_API_URL's own origin), never along a redirect."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.cases.test_modal import open_modal, values
from tests.support.fake_slack import BOT_TOKEN


class Elsewhere:
    """A second HTTP server on 127.0.0.1 (another port than the fake Slack) that records every request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                owner.requests.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
                body = b"bytes from elsewhere"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def tokens_seen(self) -> list[str]:
        return [value for request in self.requests for value in request.values() if BOT_TOKEN in value]


@pytest.fixture
def elsewhere() -> Iterator[Elsewhere]:
    server = Elsewhere()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


def test_a_file_url_on_another_local_port_never_receives_the_bot_token(bot, elsewhere):
    # Same host as SLACK_API_URL (127.0.0.1), another port: not the origin the operator trusts.
    forged = {"id": "F1", "name": "x.txt", "size": 3, "url_private_download": f"{elsewhere.url}/files-pri/T-F1/x.txt"}
    view = open_modal(bot)
    bot.requests.view_submission(view, values=values(files=[forged]))
    [note] = bot.slack.wait_for("chat.postEphemeral")
    assert "could not download" in note.params["text"]
    assert elsewhere.requests == []
    assert bot.sandbox.calls["CreateCase"] == 0


def test_a_redirect_from_slacks_file_url_is_followed_without_the_bot_token(bot, elsewhere):
    log = bot.slack.add_file("db-1.log", b"disk full at 03:12\n", "text/plain")
    bot.slack.redirect_download(log["id"], f"{elsewhere.url}/cdn/db-1.log")
    view = open_modal(bot)
    bot.requests.view_submission(view, values=values(files=[log]))
    bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None, timeout=15)

    [asked] = bot.slack.calls("file_download")
    assert asked.headers["Authorization"] == f"Bearer {BOT_TOKEN}"  # Slack's own file URL: the token, once
    [followed] = elsewhere.requests
    assert followed["path"] == "/cdn/db-1.log"
    assert "authorization" not in followed and elsewhere.tokens_seen() == []
    assert bot.sandbox.calls["AddAttachmentsToSet"] == 1 and bot.sandbox.calls["CreateCase"] == 1


API = "https://slack.com/api/"
LOCAL_API = "http://127.0.0.1:8123/api/"


@pytest.mark.parametrize(
    ("url", "api_url", "carries"),
    [
        ("https://files.slack.com/files-pri/T1-F1/x.txt", API, True),
        ("https://files.slack.com:443/files-pri/T1-F1/x.txt", API, True),
        ("https://slack.com/files-pri/T1-F1/x.txt", API, True),  # SLACK_API_URL's own origin
        ("http://files.slack.com/files-pri/T1-F1/x.txt", API, False),  # not https
        ("https://files.slack.com:8443/files-pri/T1-F1/x.txt", API, False),
        ("https://evil.slack.com/files-pri/T1-F1/x.txt", API, False),  # not a file host
        ("https://files.slack.com.evil.example/x.txt", API, False),
        ("https://evil.example/?https://files.slack.com/", API, False),
        ("https://files.slack.com@evil.example/x.txt", API, False),
        ("ftp://files.slack.com/x.txt", API, False),
        ("", API, False),
        ("http://127.0.0.1:8123/files-pri/T1-F1/x.txt", LOCAL_API, True),  # the test harness's fake Slack
        ("http://127.0.0.1:8124/files-pri/T1-F1/x.txt", LOCAL_API, False),  # same host, another port
        ("https://127.0.0.1:8123/files-pri/T1-F1/x.txt", LOCAL_API, False),  # another scheme
        ("http://localhost:8123/files-pri/T1-F1/x.txt", LOCAL_API, False),
    ],
)
def test_only_slack_file_hosts_over_https_or_the_api_origin_get_the_token(url, api_url, carries):
    from bot.slack.files import may_carry_token

    assert may_carry_token(url, api_url) is carries

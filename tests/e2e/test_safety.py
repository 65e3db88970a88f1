"""Safe by default: Socket Mode exposes no unsigned Slack path, and the bot token goes only to Slack."""

from __future__ import annotations

import io

from bot.web import make_health_app
from tests.cases.test_modal import open_modal, values


def call(app, method, path):
    status = {}

    def start_response(line, headers):
        status["line"] = line

    body = b"".join(app({"REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": io.BytesIO()}, start_response))
    return status["line"], body


def test_socket_mode_port_serves_health_and_nothing_else(bot):
    app = make_health_app(bot.services)
    line, body = call(app, "GET", "/healthz")
    assert line.startswith("200") and b'"store": true' in body
    line, _ = call(app, "POST", "/slack/events")
    assert line.startswith("404")


def test_a_forged_file_url_never_receives_the_bot_token(bot):
    port = bot.slack.api_url.split(":")[2].split("/")[0]
    forged = {"id": "F1", "name": "x.txt", "size": 3, "url_private_download": f"http://localhost:{port}/evil"}
    view = open_modal(bot)
    bot.requests.view_submission(view, values=values(files=[forged]))
    [note] = bot.slack.wait_for("chat.postEphemeral")
    assert "could not download" in note.params["text"]
    assert not bot.slack.calls("file_download")
    assert not [c for c in bot.slack.calls() if c.path.startswith("/evil")]
    assert bot.sandbox.calls["CreateCase"] == 0

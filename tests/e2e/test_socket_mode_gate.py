"""Socket Mode: after-ack work yields to a request still being answered, as it does over HTTP.

Over HTTP the server's door counts each admitted request for the after-ack gate (bot.ack_first);
Socket Mode's requests never pass that door, so uncounted, every after-ack job started at once
beside the acks of a burst still coming in (review14).
"""

from __future__ import annotations

import logging
import threading

from slack_bolt import Ack
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.web import socket_mode_handler


class SocketRecorder:
    """Where the handler sends its envelope acks: the websocket, in production."""

    def __init__(self) -> None:
        self.sent: list[SocketModeResponse] = []
        self.logger = logging.getLogger("socket-recorder")

    def send_socket_mode_response(self, response: SocketModeResponse) -> None:
        self.sent.append(response)


def test_after_ack_work_waits_while_a_socket_mode_request_is_being_answered(bot_factory):
    bot = bot_factory(env={"SLACK_APP_TOKEN": "xapp-1-test-token"})
    job_started = threading.Event()
    started_while_answering: list[bool] = []

    @bot.app.command("/probe")
    def probe(ack: Ack) -> None:
        bot.services.work.submit(job_started.set)
        # Still being answered: the job must not start yet (the gate holds a job 1 s at most).
        started_while_answering.append(job_started.wait(0.5))
        ack()

    handler = socket_mode_handler(bot.app, bot.services)
    socket = SocketRecorder()
    payload = {"command": "/probe", "text": "", "user_id": "U1", "channel_id": "C1", "team_id": "T1"}
    try:
        handler.handle(socket, SocketModeRequest(type="slash_commands", envelope_id="e1", payload=payload))
    finally:
        handler.client.close()

    assert [response.envelope_id for response in socket.sent] == ["e1"]
    assert started_while_answering == [False]
    assert job_started.wait(10), "the job starts once the request has been answered"

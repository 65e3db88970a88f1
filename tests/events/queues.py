"""The SQS implementations the consumer is tested against, and a proxy that makes either misbehave.

`MotoQueues` is moto's server (an implementation this project did not write), `SandboxQueues` the
sandbox's own queue that `--sandbox` uses. Both are spoken to by real boto3 over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import itertools
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from bot.aws.session import new_session
from bot.sandbox import SandboxServer
from bot.sandbox.case_events import support_case_update

ACCOUNT = "123456789012"
_names = itertools.count(1)


def boto_session() -> boto3.session.Session:
    return new_session(aws_access_key_id="AKIDTEST", aws_secret_access_key="secret", region_name="us-east-1")


def plain_client(endpoint: str) -> Any:
    """The test's own client (sending, inspecting): no retries, so what it sees is what happened."""
    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=30)
    return boto_session().client("sqs", endpoint_url=endpoint, config=config)


def event_body(case_id: str = "case-123456789012-muen-2026-0000000000000001", **detail: str) -> str:
    params = {
        "account": ACCOUNT,
        "case_id": case_id,
        "display_id": "1761800001",
        "event_name": "AddCommunicationToCase",
        "communication_id": "comm-1",
        "origin": "AWS",
        "event_id": "evt-1",
    }
    params.update(detail)
    return json.dumps(support_case_update(**params))


class Queues:
    """One queue for one test, on one backend."""

    name = ""
    endpoint = ""
    queue_url = ""

    def client(self) -> Any:
        return plain_client(self.endpoint)

    def send(self, body: str) -> None:
        self.client().send_message(QueueUrl=self.queue_url, MessageBody=body)

    def counts(self) -> tuple[int, int]:
        """(visible, in flight)"""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.client().get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=names)["Attributes"]
        return int(attributes[names[0]]), int(attributes[names[1]])

    def close(self) -> None:
        pass


class MotoQueues(Queues):
    name = "moto"

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        created = self.client().create_queue(QueueName=f"support-events-{next(_names)}")
        self.queue_url = created["QueueUrl"]


class SandboxQueues(Queues):
    name = "sandbox"

    def __init__(self) -> None:
        self.server = SandboxServer(reply_delay_seconds=None, events=True).start()
        self.endpoint = self.server.url
        self.queue_url = str(self.server.events_queue_url)

    def close(self) -> None:
        self.server.stop()


class FaultyProxy:
    """Forwards SQS calls to `upstream`, except that it can answer throttling or drop the connection.

    `throttle(operation, n)`: the next n calls of that operation get 400 ThrottlingException, as SQS
    answers when over its request rate. `drop(n)`: the next n calls of any operation have their
    connection closed with no answer (an unreachable or failing network).
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self._lock = threading.Lock()
        self._throttle: dict[str, int] = {}
        self._drop = 0
        self.faults_served = 0
        self.seen: Counter[str] = Counter()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
                fault = proxy._take(operation)
                if fault == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault == "throttle":
                    self._answer(
                        400,
                        b'{"__type":"com.amazonaws.sqs#ThrottlingException","message":"Rate exceeded"}',
                        {"Content-Type": "application/x-amz-json-1.0"},
                    )
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                try:
                    upstream.request("POST", self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    payload = response.read()
                    kept = {k: v for k, v in response.getheaders() if k.lower() in ("content-type", "x-amzn-requestid")}
                    self._answer(response.status, payload, kept)
                finally:
                    upstream.close()

            def _answer(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def throttle(self, operation: str, count: int) -> None:
        with self._lock:
            self._throttle[operation] = self._throttle.get(operation, 0) + count

    def drop(self, count: int) -> None:
        with self._lock:
            self._drop += count

    def _take(self, operation: str) -> str | None:
        with self._lock:
            self.seen[operation] += 1
            if self._drop:
                self._drop -= 1
                self.faults_served += 1
                return "drop"
            if self._throttle.get(operation):
                self._throttle[operation] -= 1
                self.faults_served += 1
                return "throttle"
        return None

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

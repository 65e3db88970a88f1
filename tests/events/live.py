"""The real bot with live updates on, against the sandbox's events delivered by two SQS implementations.

`LiveQueue` is where the bot reads: the sandbox's own queue (what `--sandbox` uses), or a queue on
moto's server that a `Forwarder` fills from the sandbox's queue the way an EventBridge rule with an
SQS target would. Either way the events come from the sandbox's case changes, over real HTTP.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from bot.bootstrap import EventQueue
from bot.events.consumer import ConsumerOptions
from bot.events.sqs import sqs_client
from tests.events.queues import boto_session, plain_client

_names = itertools.count(1)

# Production's logic with test-sized waits: short long polls so stop() is prompt, short backoffs.
FAST = ConsumerOptions(
    wait_seconds=1,
    visibility_seconds=5,
    retry_base_seconds=1,
    retry_max_seconds=4,
    error_base_seconds=0.05,
    error_max_seconds=0.2,
    stats_interval_seconds=0.2,
)


class Forwarder:
    """Moves every message of the sandbox's queue into another queue: EventBridge's rule and target."""

    def __init__(self, sandbox: Any, target_endpoint: str, target_url: str) -> None:
        self.source = plain_client(sandbox.url)
        self.source_url = str(sandbox.events_queue_url)
        self.target = plain_client(target_endpoint)
        self.target_url = target_url
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="forwarder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                got = self.source.receive_message(QueueUrl=self.source_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            except Exception:  # noqa: BLE001 - the sandbox is stopping
                return
            for message in got.get("Messages") or []:
                self.target.send_message(QueueUrl=self.target_url, MessageBody=message["Body"])
                self.source.delete_message(QueueUrl=self.source_url, ReceiptHandle=message["ReceiptHandle"])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class LiveQueue:
    """The queue the bot reads in one test, and how the test adds to it or looks at it."""

    def __init__(self, backend: str, sandbox: Any, moto_endpoint: str | None = None) -> None:
        self.backend = backend
        self.forwarder: Forwarder | None = None
        if backend == "sandbox":
            self.endpoint = sandbox.url
            self.queue_url = str(sandbox.events_queue_url)
        else:
            assert moto_endpoint is not None
            self.endpoint = moto_endpoint
            created = plain_client(moto_endpoint).create_queue(QueueName=f"live-{next(_names)}")
            self.queue_url = created["QueueUrl"]
            self.forwarder = Forwarder(sandbox, moto_endpoint, self.queue_url)

    def events(self, options: ConsumerOptions = FAST) -> EventQueue:
        """What bootstrap.build_services takes for BOT_EVENTS_QUEUE_URL (AWS_ENDPOINT_URL_SQS = endpoint)."""
        client = sqs_client(
            self.queue_url, session=boto_session(), endpoint_url=self.endpoint, wait_seconds=options.wait_seconds
        )
        return EventQueue(client, options)

    def env(self, **extra: str) -> dict[str, str | None]:
        # A poll interval no test outlasts: whatever reaches a thread got there through an event.
        return {"BOT_EVENTS_QUEUE_URL": self.queue_url, "POLL_INTERVAL_SECONDS": "3600", **extra}

    def send(self, body: str) -> None:
        plain_client(self.endpoint).send_message(QueueUrl=self.queue_url, MessageBody=body)

    def counts(self) -> tuple[int, int]:
        """(visible, in flight)"""
        return _counts(plain_client(self.endpoint), self.queue_url)

    def drained(self) -> bool:
        """Nothing left to read: here, nor (with moto) on the sandbox's side of the forwarding."""
        if self.forwarder is not None and _counts(self.forwarder.source, self.forwarder.source_url) != (0, 0):
            return False
        return self.counts() == (0, 0)

    def close(self) -> None:
        if self.forwarder is not None:
            self.forwarder.close()


def _counts(client: Any, queue_url: str) -> tuple[int, int]:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return int(attributes[names[0]]), int(attributes[names[1]])

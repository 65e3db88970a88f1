"""The event consumer against real SQS implementations (moto's server and the sandbox's), over HTTP.

Each test runs twice, once per backend (the `queues` fixture). The handler here is a recorder: the
real one is the sync path's exactly-once case sync, which makes a second call for the same event
harmless; what these tests prove is when the consumer calls it, deletes, and gives back.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.events.consumer import ConsumerOptions, EventConsumer
from bot.events.envelope import CaseEvent
from bot.events.outcome import Outcome
from bot.events.sqs import sqs_client
from bot.events.watch import PipelineWatch
from tests.events.queues import FaultyProxy, Queues, boto_session, event_body
from tests.sandbox.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
FAST = ConsumerOptions(
    wait_seconds=1,
    visibility_seconds=30,
    retry_base_seconds=1,
    error_base_seconds=0.05,
    error_max_seconds=0.2,
    stats_interval_seconds=0.2,
)


class Recorder:
    """A handler that records each call; `outcomes` are answered in turn, then DONE."""

    def __init__(self, outcomes: list[Outcome | Exception] | None = None) -> None:
        self.calls: list[tuple[float, CaseEvent]] = []
        self._outcomes = list(outcomes or [])
        self._lock = threading.Lock()

    def __call__(self, event: CaseEvent) -> Outcome:
        with self._lock:
            self.calls.append((time.monotonic(), event))
            answer = self._outcomes.pop(0) if self._outcomes else Outcome.DONE
        if isinstance(answer, Exception):
            raise answer
        return answer

    @property
    def events(self) -> list[CaseEvent]:
        with self._lock:
            return [event for _, event in self.calls]


@pytest.fixture
def start_consumer() -> Iterator[Callable[..., EventConsumer]]:
    started: list[EventConsumer] = []

    def start(
        queues: Queues, handler: Any, *, endpoint: str | None = None, client: Any = None, **options: Any
    ) -> EventConsumer:
        opts = ConsumerOptions(**{**FAST.__dict__, **options})
        if client is None:
            client = sqs_client(
                queues.queue_url,
                session=boto_session(),
                endpoint_url=endpoint or queues.endpoint,
                wait_seconds=opts.wait_seconds,
            )
        consumer = EventConsumer(client, queues.queue_url, handler, options=opts, watch=PipelineWatch())
        consumer.start()
        started.append(consumer)
        return consumer

    yield start
    for consumer in started:
        consumer.stop(timeout=25)


def drained(queues: Queues) -> bool:
    return queues.counts() == (0, 0)


def test_an_event_reaches_the_handler_once_and_is_deleted(queues: Queues, start_consumer) -> None:
    recorder = Recorder()
    consumer = start_consumer(queues, recorder)
    queues.send(event_body(communication_id="comm-42"))

    assert wait_until(lambda: recorder.events, timeout=10)
    # The deleted counter moves once DeleteMessageBatch has answered, a moment after the queue is empty.
    assert wait_until(lambda: drained(queues) and consumer.health()["messages_deleted"] >= 1, timeout=10)
    [event] = recorder.events
    assert (event.case_id, event.communication_id, event.event_name, event.origin) == (
        "case-123456789012-muen-2026-0000000000000001",
        "comm-42",
        "AddCommunicationToCase",
        "AWS",
    )
    health = consumer.health()
    assert (health["messages_received"], health["messages_handled"], health["messages_deleted"]) == (1, 1, 1)
    assert health["last_event_at"] is not None
    assert consumer.watch is not None and consumer.watch.health()["last_event_at"] is not None


def test_duplicates_in_a_batch_reach_the_handler_once(queues: Queues, start_consumer) -> None:
    for _ in range(3):
        queues.send(event_body(communication_id="comm-1"))
    queues.send(event_body(communication_id="comm-2"))
    recorder = Recorder()
    consumer = start_consumer(queues, recorder)

    assert wait_until(
        lambda: drained(queues) and len(recorder.events) == 2 and consumer.health()["messages_deleted"] >= 4,
        timeout=10,
    )
    assert sorted(e.communication_id for e in recorder.events) == ["comm-1", "comm-2"]
    health = consumer.health()
    assert (health["messages_duplicates"], health["messages_deleted"]) == (2, 4)


def test_a_kill_between_done_and_delete_redelivers_and_the_handler_runs_again(queues: Queues, start_consumer) -> None:
    """At-least-once in: the child's handler said DONE, then it died before DeleteMessageBatch. The
    message comes back after its visibility timeout and the handler is called again, which the real
    handler (the exactly-once case sync: claims in the store) turns into no second post."""
    queues.send(event_body(communication_id="comm-7"))
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.events.child_consumer", queues.endpoint, queues.queue_url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        lines = [child.stdout.readline().strip(), child.stdout.readline().strip()]  # type: ignore[union-attr]
        assert lines == ["handled case-123456789012-muen-2026-0000000000000001", "deleting"]
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)
    assert queues.counts() == (0, 1)  # still there, hidden until the child's visibility timeout ends

    recorder = Recorder()
    start_consumer(queues, recorder)
    assert wait_until(lambda: drained(queues) and recorder.events, timeout=15)
    assert [e.communication_id for e in recorder.events] == ["comm-7"]


def test_malformed_and_foreign_messages_are_logged_and_deleted(
    queues: Queues, start_consumer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.events.consumer")
    foreign = json.loads(event_body())
    foreign["source"] = "aws.ec2"
    cloudtrail = json.loads(event_body())
    cloudtrail["detail-type"] = "AWS API Call via CloudTrail"
    bad_case = json.loads(event_body())
    bad_case["detail"]["case-id"] = 42
    for body in ("not json", "[1, 2]", json.dumps(foreign), json.dumps(cloudtrail), json.dumps(bad_case)):
        queues.send(body)
    queues.send(event_body(communication_id="comm-ok"))
    recorder = Recorder()
    consumer = start_consumer(queues, recorder)

    assert wait_until(lambda: drained(queues) and recorder.events, timeout=10)
    assert [e.communication_id for e in recorder.events] == ["comm-ok"]
    assert consumer.health()["messages_ignored"] == 5
    ignored = [r for r in caplog.records if "not a usable event" in r.getMessage()]
    assert len(ignored) == 5
    by_level = {r.getMessage().rsplit(": ", 1)[-1]: r.levelname for r in ignored}
    assert by_level["body is not JSON"] == "WARNING"
    assert by_level["body is a JSON list, not an object"] == "WARNING"
    assert by_level["source 'aws.ec2' is not aws.support"] == "INFO"
    assert by_level["detail-type 'AWS API Call via CloudTrail' is not Support Case Update"] == "INFO"
    assert by_level["detail.case-id 42 is not a case ID"] == "WARNING"


def test_retry_later_brings_the_message_back_after_a_growing_backoff(
    queues: Queues, proxy: FaultyProxy, start_consumer
) -> None:
    """The receive hides a message for 30 s; it is back after 1 s, then 2 s: ChangeMessageVisibility
    with the backoff of its ApproximateReceiveCount, not the receive's timeout running out."""
    recorder = Recorder([Outcome.retry_later("throttled"), RuntimeError("bug in the handler")])
    consumer = start_consumer(queues, recorder, endpoint=proxy.url, visibility_seconds=30)
    queues.send(event_body())

    # The deleted counter moves once DeleteMessageBatch has answered, a moment after the queue is empty.
    assert wait_until(
        lambda: len(recorder.calls) == 3 and drained(queues) and consumer.health()["messages_deleted"] >= 1,
        timeout=60,
    )
    (first, _), (second, _), (third, _) = recorder.calls
    assert 0.9 <= second - first < 20
    assert 1.9 <= third - second < 20
    health = consumer.health()
    assert (health["messages_retried"], health["messages_handled"], health["messages_deleted"]) == (2, 1, 1)
    assert (proxy.seen["ChangeMessageVisibilityBatch"], proxy.seen["DeleteMessageBatch"]) == (2, 1)
    assert consumer.is_alive()


def test_throttling_and_dropped_connections_do_not_stop_the_worker(
    queues: Queues, proxy: FaultyProxy, start_consumer
) -> None:
    proxy.throttle("ReceiveMessage", 3)
    proxy.drop(2)
    recorder = Recorder()
    consumer = start_consumer(queues, recorder, endpoint=proxy.url)

    assert wait_until(lambda: proxy.faults_served == 5, timeout=20)
    assert consumer.is_alive()
    assert wait_until(lambda: consumer.health()["last_error"], timeout=5)
    queues.send(event_body())
    assert wait_until(lambda: drained(queues) and recorder.events, timeout=20)
    assert consumer.health()["consecutive_errors"] == 0


def test_an_unreachable_queue_does_not_stop_the_worker(start_consumer) -> None:
    unreachable = Queues()
    unreachable.endpoint = "http://127.0.0.1:9"  # discard port: connection refused
    unreachable.queue_url = "http://127.0.0.1:9/123456789012/support-events"
    consumer = start_consumer(unreachable, Recorder())

    assert wait_until(lambda: consumer.health()["consecutive_errors"] >= 3, timeout=20)
    assert consumer.is_alive()
    assert "EndpointConnectionError" in consumer.health()["last_error"]


def test_stop_is_prompt_and_gives_back_what_a_pending_poll_brings(
    queues: Queues, proxy: FaultyProxy, start_consumer
) -> None:
    recorder = Recorder()
    consumer = start_consumer(queues, recorder, endpoint=proxy.url, wait_seconds=20, visibility_seconds=60)
    assert wait_until(lambda: proxy.seen["ReceiveMessage"] >= 1, timeout=10)  # a long poll is under way

    started = time.monotonic()
    consumer.stop()
    assert time.monotonic() - started < 2.5
    queues.send(event_body())  # the pending poll receives it after stop: it must not be handled

    assert wait_until(lambda: not consumer.is_alive(), timeout=25)
    assert recorder.events == []
    assert consumer.health()["messages_released"] == 1
    # Given back, not hidden for the receive's 60 s: another consumer has it at once.
    other = Recorder()
    start_consumer(queues, other)
    assert wait_until(lambda: other.events and drained(queues), timeout=10)


def test_health_shows_the_queue_and_how_long_the_last_message_waited(queues: Queues, start_consumer) -> None:
    recorder = Recorder()
    consumer = start_consumer(queues, recorder)
    queues.send(event_body())
    assert wait_until(lambda: drained(queues) and recorder.events, timeout=10)
    assert wait_until(lambda: consumer.health().get("queue_checked_at"), timeout=5)

    health = consumer.health()
    assert health["queue"] == queues.queue_url.rsplit("/", 1)[-1]
    assert isinstance(health["queue_visible"], int) and isinstance(health["queue_in_flight"], int)
    assert 0 <= health["last_message_wait_seconds"] < 10
    json.dumps(health)  # /healthz serialises it as is


def test_the_endpoint_comes_from_aws_endpoint_url_sqs(
    queues: Queues, start_consumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", queues.endpoint)
    client = sqs_client(queues.queue_url, session=boto_session(), wait_seconds=1)
    recorder = Recorder()
    start_consumer(queues, recorder, client=client)
    queues.send(event_body())
    assert wait_until(lambda: drained(queues) and recorder.events, timeout=10)

"""attack2: hostile event content against the envelope and the consumer (moto's SQS and the sandbox's)."""

from __future__ import annotations

import json

from bot.events.envelope import Ignored, parse_message
from tests.events.queues import Queues, event_body
from tests.events.test_consumer import Recorder, drained, start_consumer  # noqa: F401 - the fixture
from tests.sandbox.helpers import wait_until


def poison() -> str:
    body = json.loads(event_body(communication_id="comm-poison"))
    body["detail"]["event-name"] = ["AddCommunicationToCase"]  # a list: unhashable
    return json.dumps(body)


def test_an_event_name_of_the_wrong_type_is_ignored_not_raised() -> None:
    assert isinstance(parse_message(poison()), Ignored)


def test_a_poison_message_neither_blocks_its_batch_nor_stays_in_the_queue(queues: Queues, start_consumer) -> None:  # noqa: F811
    queues.send(poison())
    queues.send(event_body(communication_id="comm-ok"))
    recorder = Recorder()
    consumer = start_consumer(queues, recorder, batch_size=10)

    assert wait_until(lambda: drained(queues) and recorder.events, timeout=10)
    assert [e.communication_id for e in recorder.events] == ["comm-ok"]
    assert consumer.health()["messages_ignored"] == 1
    assert consumer.health()["consecutive_errors"] == 0

"""Live updates: how fast the event consumer hands an event to its handler, on two SQS implementations.

    python -m bench.events [--trickle 200] [--burst 300]

For the sandbox's queue and for moto's server, with the consumer's production settings (20 s long
polls, batches of 10) and a handler that only records the time:
- trickle: one SendMessage every 0-20 ms; latency from just before SendMessage to the handler call;
- burst: `--burst` messages already queued; handler calls per second until the queue is empty;
- sandbox only: an AWS reply written on a case (add_aws_reply) to the handler call, the whole
  emulated path AWS -> EventBridge -> SQS -> consumer.

The whole bot's figures (AWS reply -> thread post with events on vs polling at 60 s, Support API
calls per hour for 250 quiet linked cases) are bench.live's.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from bot.events.consumer import EventConsumer
from bot.events.envelope import CaseEvent
from bot.events.outcome import Outcome
from bot.events.sqs import sqs_client
from tests.events.queues import MotoQueues, Queues, SandboxQueues, boto_session, event_body
from tests.sandbox.helpers import open_case


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


class Clocked:
    """The handler: when each communication ID arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.done = threading.Condition()

    def __call__(self, event: CaseEvent) -> Outcome:
        with self.done:
            self.arrived.setdefault(event.communication_id, time.perf_counter())
            self.done.notify_all()
        return Outcome.DONE

    def wait_for(self, count: int, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        with self.done:
            while len(self.arrived) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.arrived)} of {count} events reached the handler")
                self.done.wait(left)


def consumer_for(queues: Queues, handler: Clocked) -> EventConsumer:
    client = sqs_client(queues.queue_url, session=boto_session(), endpoint_url=queues.endpoint)
    return EventConsumer(client, queues.queue_url, handler)


def trickle(queues: Queues, count: int) -> list[float]:
    handler = Clocked()
    consumer = consumer_for(queues, handler)
    consumer.start()
    sender = queues.client()
    sent: dict[str, float] = {}
    try:
        time.sleep(0.5)  # the first long poll is waiting, as in steady state
        for n in range(count):
            key = f"trickle-{n}"
            sent[key] = time.perf_counter()
            sender.send_message(QueueUrl=queues.queue_url, MessageBody=event_body(communication_id=key))
            time.sleep(random.uniform(0, 0.02))
        handler.wait_for(count)
    finally:
        consumer.stop(timeout=25)
    return [handler.arrived[key] - sent[key] for key in sent]


def burst(queues: Queues, count: int) -> float:
    sender = queues.client()
    for start in range(0, count, 10):
        entries = [
            {"Id": str(n), "MessageBody": event_body(communication_id=f"burst-{n}")}
            for n in range(start, min(start + 10, count))
        ]
        sender.send_message_batch(QueueUrl=queues.queue_url, Entries=entries)
    handler = Clocked()
    consumer = consumer_for(queues, handler)
    started = time.perf_counter()
    consumer.start()
    try:
        handler.wait_for(count)
    finally:
        consumer.stop(timeout=25)
    return count / (max(handler.arrived.values()) - started)


def aws_reply_to_handler(queues: SandboxQueues, count: int) -> list[float]:
    server = queues.server
    case_id = open_case(boto_session().client("support", endpoint_url=server.url))
    handler = Clocked()
    consumer = consumer_for(queues, handler)
    consumer.start()
    written: list[float] = []
    try:
        handler.wait_for(1)  # CreateCase
        for n in range(count):
            written.append(time.perf_counter())
            server.add_aws_reply(case_id, f"Reply {n}")
            handler.wait_for(n + 2)
            time.sleep(random.uniform(0, 0.02))
    finally:
        consumer.stop(timeout=25)
    arrivals = sorted(t for key, t in handler.arrived.items() if key)  # replies have communication IDs
    return [arrived - sent for arrived, sent in zip(arrivals, written, strict=True)]


def report(name: str, samples: list[float]) -> None:
    print(
        f"{name:<34} n={len(samples):<5} p50={percentile(samples, 0.5) * 1000:7.1f} ms  "
        f"p99={percentile(samples, 0.99) * 1000:7.1f} ms  max={max(samples) * 1000:7.1f} ms  "
        f"mean={statistics.fmean(samples) * 1000:7.1f} ms"
    )


def on(make: Callable[[], Queues], run: Callable[[Queues], Any]) -> Any:
    queues = make()
    try:
        return run(queues)
    finally:
        queues.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.events", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trickle", type=int, default=200, help="messages sent one by one (default 200)")
    parser.add_argument("--burst", type=int, default=300, help="messages queued before the consumer starts")
    args = parser.parse_args(argv)

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    backends: dict[str, Callable[[], Queues]] = {
        "sandbox": SandboxQueues,
        "moto": lambda: MotoQueues(f"http://{host}:{port}"),
    }
    try:
        for name, make in backends.items():
            report(f"{name}: SendMessage -> handler", on(make, lambda q: trickle(q, args.trickle)))
            rate = on(make, lambda q: burst(q, args.burst))
            print(f"{name + ': burst of ' + str(args.burst):<34} {rate:8.0f} events/s handled (no-op handler)")
        report("sandbox: AWS reply -> handler", on(SandboxQueues, lambda q: aws_reply_to_handler(q, args.trickle)))
    finally:
        moto.stop()


if __name__ == "__main__":
    main()

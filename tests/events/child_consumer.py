"""A consumer in its own process, frozen just before its delete, for the parent to kill -9 there.

    python -m tests.events.child_consumer <endpoint> <queue_url>

Prints "handled <case-id>" when the handler returned DONE and "deleting" when DeleteMessageBatch is
about to leave; then it hangs (botocore's before-call hook, not a patch of boto3) until killed.
"""

from __future__ import annotations

import sys
import threading

from bot.events.consumer import ConsumerOptions, EventConsumer
from bot.events.outcome import Outcome
from bot.events.sqs import sqs_client
from tests.events.queues import boto_session


def main(endpoint: str, queue_url: str) -> None:
    client = sqs_client(queue_url, session=boto_session(), endpoint_url=endpoint, wait_seconds=1)

    def freeze(**_: object) -> None:
        print("deleting", flush=True)
        threading.Event().wait()

    client.meta.events.register("before-call.sqs.DeleteMessageBatch", freeze)

    def handler(event):  # type: ignore[no-untyped-def]
        print(f"handled {event.case_id}", flush=True)
        return Outcome.DONE

    options = ConsumerOptions(wait_seconds=1, visibility_seconds=2)
    EventConsumer(client, queue_url, handler, options=options).start()
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

"""The real bot (bootstrap.build_services) with live updates, in its own process, frozen before its delete.

    python -m tests.events.child_bot <sandbox url> <sqs endpoint>     (settings from the environment)

Prints "ready" once its workers run and the poller's first cycle is over, and "deleting" when a
DeleteMessageBatch is about to leave, i.e. after the handler answered DONE and the posts are
recorded; then that call hangs (botocore's before-call hook, not a patch of boto3) until the parent
kills the process with -9.
"""

from __future__ import annotations

import sys
import threading
import time

from bot.bootstrap import EventQueue, build_services, sandbox_gateway
from bot.config import load_settings
from bot.events.sqs import sqs_client
from tests.events.live import FAST
from tests.events.queues import boto_session


def main(sandbox_url: str, endpoint: str) -> None:
    settings = load_settings()
    client = sqs_client(settings.events_queue_url, session=boto_session(), endpoint_url=endpoint, wait_seconds=1)

    def freeze(**_: object) -> None:
        print("deleting", flush=True)
        threading.Event().wait()

    client.meta.events.register("before-call.sqs.DeleteMessageBatch", freeze)
    services = build_services(settings, gateway=sandbox_gateway(sandbox_url), events=EventQueue(client, FAST))
    services.start_workers()
    while services.poller.health()["cycles"] < 1:
        time.sleep(0.02)
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

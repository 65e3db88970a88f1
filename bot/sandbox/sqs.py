"""A small SQS over botocore's JSON protocol, for the sandbox's Support Case Update events.

botocore sends `POST /` with `X-Amz-Target: AmazonSQS.<Operation>` and the queue's URL in the body,
so the sandbox's one port serves it beside AWS Support. It keeps what the event consumer relies on:
long polls that return as soon as a message arrives, visibility timeouts, receive counts, receipt
handles, batch deletes and visibility changes, and the approximate counts of GetQueueAttributes.
A standard queue: no FIFO, no delay queues, no message attributes, no dead-letter queue.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.sandbox.errors import SupportError

logger = logging.getLogger(__name__)

TARGET_PREFIX = "AmazonSQS."
JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
MAX_WAIT_SECONDS = 20
MAX_BATCH = 10
MAX_VISIBILITY_SECONDS = 12 * 3600
DEFAULT_VISIBILITY_SECONDS = 30


@dataclass
class _Message:
    message_id: str
    body: str
    sent_ms: int
    visible_at: float = 0.0  # time.monotonic()
    receive_count: int = 0
    first_received_ms: int = 0
    receipt: str = ""


class SandboxQueue:
    """One standard queue, thread-safe; receivers wait on a condition, not a sleep loop."""

    def __init__(self, name: str, arn: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.arn = arn
        self.visibility_seconds = DEFAULT_VISIBILITY_SECONDS
        self._clock = clock
        self._messages: dict[str, _Message] = {}
        self._receipts: dict[str, str] = {}  # every handle ever issued -> message ID
        self._arrived = threading.Condition()
        self._closed = False
        self.created_ms = _now_ms()

    def send(self, body: str) -> dict[str, str]:
        message = _Message(message_id=str(uuid.uuid4()), body=body, sent_ms=_now_ms())
        with self._arrived:
            self._messages[message.message_id] = message
            self._arrived.notify_all()
        return {"MessageId": message.message_id, "MD5OfMessageBody": _md5(body)}

    def receive(self, limit: int, wait_seconds: float, visibility_seconds: int) -> list[_Message]:
        deadline = self._clock() + wait_seconds
        with self._arrived:
            while True:
                taken = self._take(limit, visibility_seconds)
                remaining = deadline - self._clock()
                if taken or remaining <= 0 or self._closed:
                    return taken
                # A hidden message that becomes visible again wakes nobody: look again by then.
                self._arrived.wait(min(remaining, self._next_visible_in()))

    def delete(self, receipt: str) -> None:
        with self._arrived:
            # As in SQS, an older handle of a message still deletes it.
            self._messages.pop(self._message_id(receipt), None)

    def change_visibility(self, receipt: str, seconds: int) -> None:
        with self._arrived:
            message = self._messages.get(self._message_id(receipt))
            if message is None or message.visible_at <= self._clock():
                raise SupportError("MessageNotInflight", "The message referred to is not in flight.")
            message.visible_at = self._clock() + seconds
            self._arrived.notify_all()

    def attributes(self) -> dict[str, str]:
        with self._arrived:
            now = self._clock()
            visible = sum(1 for m in self._messages.values() if m.visible_at <= now)
            return {
                "ApproximateNumberOfMessages": str(visible),
                "ApproximateNumberOfMessagesNotVisible": str(len(self._messages) - visible),
                "ApproximateNumberOfMessagesDelayed": "0",
                "VisibilityTimeout": str(self.visibility_seconds),
                "ReceiveMessageWaitTimeSeconds": "0",
                "QueueArn": self.arn,
                "CreatedTimestamp": str(self.created_ms // 1000),
            }

    def close(self) -> None:
        """Answer every waiting long poll now (the server is stopping)."""
        with self._arrived:
            self._closed = True
            self._arrived.notify_all()

    def _take(self, limit: int, visibility_seconds: int) -> list[_Message]:
        now = self._clock()
        taken: list[_Message] = []
        for message in self._messages.values():
            if len(taken) == limit:
                break
            if message.visible_at > now:
                continue
            message.receive_count += 1
            message.first_received_ms = message.first_received_ms or _now_ms()
            message.visible_at = now + visibility_seconds
            message.receipt = f"{message.message_id}#{uuid.uuid4().hex}"
            self._receipts[message.receipt] = message.message_id
            taken.append(message)
        return taken

    def _next_visible_in(self) -> float:
        now = self._clock()
        hidden = [m.visible_at - now for m in self._messages.values() if m.visible_at > now]
        return max(0.01, min(hidden)) if hidden else float(MAX_WAIT_SECONDS)

    def _message_id(self, receipt: str) -> str:
        message_id = self._receipts.get(receipt)
        if message_id is None:
            raise SupportError("ReceiptHandleIsInvalid", f'The input receipt handle "{receipt}" is not valid.')
        return message_id


def answer(
    api: SqsApi | None, take_fault: Callable[[str], Any], target: str, body: bytes, base_url: str
) -> tuple[int, dict[str, Any]]:
    """One request: (HTTP status, JSON body). Faults are injected as "sqs:<Operation>"."""
    operation = target.removeprefix(TARGET_PREFIX)
    try:
        if api is None:
            raise SupportError("UnknownOperationException", "This sandbox was started without events.")
        fault = take_fault(f"sqs:{operation}")
        if fault is not None:
            raise SupportError(fault.code, fault.message)
        try:
            parsed = json.loads(body or b"{}")
        except ValueError as exc:
            raise SupportError("SerializationException", "Request body is not valid JSON.") from exc
        return 200, api.call(operation, parsed, base_url)
    except SupportError as error:
        return error.status, error.body()
    except Exception:  # the request's boundary, as for Support
        logger.exception("sandbox SQS failed on %s", operation)
        return 500, SupportError("InternalFailure").body()


class SqsApi:
    """The operations, by name, over the queues of one account."""

    def __init__(self, account: str, region: str = "us-east-1") -> None:
        self.account = account
        self.region = region
        self.queues: dict[str, SandboxQueue] = {}
        self._lock = threading.Lock()

    def queue(self, name: str) -> SandboxQueue:
        with self._lock:
            if name not in self.queues:
                self.queues[name] = SandboxQueue(name, f"arn:aws:sqs:{self.region}:{self.account}:{name}")
            return self.queues[name]

    def close(self) -> None:
        for queue in list(self.queues.values()):
            queue.close()

    def call(self, operation: str, body: dict[str, Any], base_url: str) -> dict[str, Any]:
        handler = _OPERATIONS.get(operation)
        if handler is None:
            raise SupportError("UnsupportedOperation", f"The sandbox's SQS does not support {operation}.")
        return handler(self, body, base_url)

    def _named(self, body: dict[str, Any]) -> SandboxQueue:
        url = body.get("QueueUrl")
        if not isinstance(url, str) or not url:
            raise SupportError("MissingParameter", "The request must contain the parameter QueueUrl.")
        # By name: the host part may be 127.0.0.1, localhost or whatever the caller was told.
        queue = self.queues.get(url.rstrip("/").rsplit("/", 1)[-1])
        if queue is None:
            raise SupportError("QueueDoesNotExist", "The specified queue does not exist.")
        return queue


def _create_queue(api: SqsApi, body: dict[str, Any], base_url: str) -> dict[str, Any]:
    name = _required(body, "QueueName")
    queue = api.queue(name)
    if "VisibilityTimeout" in (body.get("Attributes") or {}):
        queue.visibility_seconds = _bounded(body["Attributes"]["VisibilityTimeout"], 0, MAX_VISIBILITY_SECONDS)
    return {"QueueUrl": f"{base_url}/{api.account}/{name}"}


def _get_queue_url(api: SqsApi, body: dict[str, Any], base_url: str) -> dict[str, Any]:
    name = _required(body, "QueueName")
    api._named({"QueueUrl": name})
    return {"QueueUrl": f"{base_url}/{api.account}/{name}"}


def _send_message(api: SqsApi, body: dict[str, Any], _: str) -> dict[str, Any]:
    return api._named(body).send(_required(body, "MessageBody"))


def _send_message_batch(api: SqsApi, body: dict[str, Any], _: str) -> dict[str, Any]:
    queue = api._named(body)
    return _batch(body, lambda entry: queue.send(_required(entry, "MessageBody")))


def _receive_message(api: SqsApi, body: dict[str, Any], _: str) -> dict[str, Any]:
    queue = api._named(body)
    limit = _bounded(body.get("MaxNumberOfMessages", 1), 1, MAX_BATCH)
    wait = _bounded(body.get("WaitTimeSeconds", 0), 0, MAX_WAIT_SECONDS)
    visibility = _bounded(body.get("VisibilityTimeout", queue.visibility_seconds), 0, MAX_VISIBILITY_SECONDS)
    wanted = set(body.get("MessageSystemAttributeNames") or []) | set(body.get("AttributeNames") or [])
    messages = queue.receive(limit, wait, visibility)
    return {"Messages": [_message_json(m, wanted) for m in messages]} if messages else {}


def _delete_message(api: SqsApi, body: dict[str, Any], _: str) -> dict[str, Any]:
    api._named(body).delete(_required(body, "ReceiptHandle"))
    return {}


def _delete_message_batch(api: SqsApi, body: dict[str, Any], _: str) -> dict[str, Any]:
    queue = api._named(body)
    return _batch(body, lambda entry: queue.delete(_required(entry, "ReceiptHandle")))


def _change_visibility(api: SqsApi, body: dict[str, Any], _: str) -> dict[str, Any]:
    seconds = _bounded(body.get("VisibilityTimeout"), 0, MAX_VISIBILITY_SECONDS)
    api._named(body).change_visibility(_required(body, "ReceiptHandle"), seconds)
    return {}


def _change_visibility_batch(api: SqsApi, body: dict[str, Any], _: str) -> dict[str, Any]:
    queue = api._named(body)

    def change(entry: dict[str, Any]) -> None:
        seconds = _bounded(entry.get("VisibilityTimeout"), 0, MAX_VISIBILITY_SECONDS)
        queue.change_visibility(_required(entry, "ReceiptHandle"), seconds)

    return _batch(body, change)


def _get_queue_attributes(api: SqsApi, body: dict[str, Any], _: str) -> dict[str, Any]:
    attributes = api._named(body).attributes()
    names = set(body.get("AttributeNames") or [])
    return {"Attributes": attributes if "All" in names else {k: v for k, v in attributes.items() if k in names}}


def _batch(body: dict[str, Any], apply: Callable[[dict[str, Any]], dict[str, str] | None]) -> dict[str, Any]:
    entries = body.get("Entries") or []
    if not entries:
        raise SupportError("EmptyBatchRequest", "There should be at least one entry in the request.")
    if len(entries) > MAX_BATCH:
        raise SupportError("TooManyEntriesInBatchRequest", f"Maximum number of entries per request are {MAX_BATCH}.")
    successful, failed = [], []
    for entry in entries:
        try:
            successful.append({"Id": entry.get("Id"), **(apply(entry) or {})})
        except SupportError as error:
            failed.append({"Id": entry.get("Id"), "Code": error.code, "Message": error.message, "SenderFault": True})
    return {"Successful": successful, "Failed": failed}


def _message_json(message: _Message, wanted: set[str]) -> dict[str, Any]:
    system = {
        "ApproximateReceiveCount": str(message.receive_count),
        "SentTimestamp": str(message.sent_ms),
        "ApproximateFirstReceiveTimestamp": str(message.first_received_ms),
        "SenderId": "AIDASANDBOX",
    }
    raw: dict[str, Any] = {
        "MessageId": message.message_id,
        "ReceiptHandle": message.receipt,
        "MD5OfBody": _md5(message.body),
        "Body": message.body,
    }
    attributes = system if "All" in wanted else {k: v for k, v in system.items() if k in wanted}
    if attributes:
        raw["Attributes"] = attributes
    return raw


def _required(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise SupportError("MissingParameter", f"The request must contain the parameter {name}.")
    return value


def _bounded(value: Any, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise SupportError("InvalidParameterValue", f"Value {value!r} is not a whole number.") from exc
    if not low <= number <= high:
        raise SupportError("InvalidParameterValue", f"Value {number} must be between {low} and {high}.")
    return number


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()  # noqa: S324 - SQS's own checksum, not security


def _now_ms() -> int:
    return int(time.time() * 1000)


_OPERATIONS: dict[str, Callable[[SqsApi, dict[str, Any], str], dict[str, Any]]] = {
    "CreateQueue": _create_queue,
    "GetQueueUrl": _get_queue_url,
    "SendMessage": _send_message,
    "SendMessageBatch": _send_message_batch,
    "ReceiveMessage": _receive_message,
    "DeleteMessage": _delete_message,
    "DeleteMessageBatch": _delete_message_batch,
    "ChangeMessageVisibility": _change_visibility,
    "ChangeMessageVisibilityBatch": _change_visibility_batch,
    "GetQueueAttributes": _get_queue_attributes,
}

"""The event consumer: long-polls the SQS queue and hands each Support Case Update to a handler.

At-least-once in, exactly-once out: a message is deleted only after the handler answered DONE (what
the event caused is recorded by then), so a kill -9 anywhere before the delete redelivers it and the
handler, idempotent, changes nothing the second time. A message that cannot be an event is logged
and deleted at once (retrying it would only fill the dead-letter queue); one the handler could not
finish comes back after a backoff that grows with its receive count, until the queue's
maxReceiveCount moves it to the dead-letter queue and the backstop poll covers it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bot.ack_first import AckFirst, running_behind
from bot.events.envelope import CaseEvent, Ignored, parse_message
from bot.events.outcome import EventHandler, Outcome
from bot.events.sqs import queue_name
from bot.events.watch import PipelineWatch

logger = logging.getLogger(__name__)

# SQS's own ceiling for a message's visibility timeout.
MAX_VISIBILITY_SECONDS = 12 * 3600
SYSTEM_ATTRIBUTES = ["ApproximateReceiveCount", "SentTimestamp"]
QUEUE_ATTRIBUTES = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]


@dataclass(frozen=True)
class ConsumerOptions:
    wait_seconds: int = 20
    batch_size: int = 10
    # How long a received batch stays hidden from other readers while its events are handled.
    visibility_seconds: int = 120
    retry_base_seconds: int = 10
    retry_max_seconds: int = 900
    error_base_seconds: float = 1.0
    error_max_seconds: float = 60.0
    # GetQueueAttributes costs a request; once a minute is plenty for /healthz.
    stats_interval_seconds: float = 60.0


def retry_delay(receive_count: int, base: int, ceiling: int) -> int:
    """Seconds a message stays hidden after its `receive_count`-th failed try: base, 2x, 4x, … ceiling."""
    exponent = max(0, min(receive_count - 1, 20))
    return int(min(base * 2**exponent, ceiling, MAX_VISIBILITY_SECONDS))


class EventConsumer:
    """A background worker (bot.services.Worker) reading one queue with one handler."""

    name = "events"

    def __init__(
        self,
        client: Any,
        queue_url: str,
        handler: EventHandler,
        *,
        options: ConsumerOptions | None = None,
        watch: PipelineWatch | None = None,
        clock: Callable[[], float] = time.time,
        behind: AckFirst | None = None,
    ) -> None:
        self.client = client
        # The gate of the requests its handlers yield to (bot.ack_first): Slack's acks come first.
        self.behind = behind
        self.queue_url = queue_url
        self.handler = handler
        self.options = options or ConsumerOptions()
        self.watch = watch
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(
            ("received", "handled", "duplicates", "ignored", "retried", "deleted", "released"), 0
        )
        self._last_message_at: float | None = None
        self._last_event_at: float | None = None
        self._last_wait: float | None = None
        self._queue_stats: dict[str, Any] = {}
        self._stats_due = 0.0
        self._errors = 0
        self._last_error = ""

    # Worker protocol ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=running_behind(self.behind, self._run), name="events", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """No handler starts after this returns. A long poll under way cannot be cut short: the thread
        ends when it returns (within wait_seconds) and gives back what it received, unhandled."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def health(self) -> dict[str, Any]:
        with self._lock:
            return {
                "queue": queue_name(self.queue_url),
                "last_message_at": _iso(self._last_message_at),
                "last_event_at": _iso(self._last_event_at),
                # How long the newest message of the last batch waited in the queue: the event lag.
                "last_message_wait_seconds": None if self._last_wait is None else round(self._last_wait, 3),
                **{f"messages_{name}": count for name, count in self._counts.items()},
                **self._queue_stats,
                "consecutive_errors": self._errors,
                "last_error": self._last_error,
                # The poller's side: whether polls keep finding what events should have brought.
                **({"pipeline": self.watch.health()} if self.watch is not None else {}),
            }

    # The loop ----------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._refresh_stats()
                messages = self._receive()
                self._recovered()
                if self._stop.is_set():
                    self._release(messages)
                    break
                self.process(messages)
            except (ClientError, BotoCoreError) as error:
                self._failed(_describe(error))
            except Exception:  # the worker's boundary: one bad batch must not end live updates
                logger.exception("event consumer failed on a batch; backing off")
                self._failed("unexpected error (see log)")

    def _receive(self) -> list[dict[str, Any]]:
        response = self.client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.options.batch_size,
            WaitTimeSeconds=self.options.wait_seconds,
            VisibilityTimeout=self.options.visibility_seconds,
            MessageSystemAttributeNames=SYSTEM_ATTRIBUTES,
        )
        return list(response.get("Messages") or [])

    @staticmethod
    def _parse(message: dict[str, Any]) -> CaseEvent | Ignored:
        # One message that breaks the parser must not hold back the rest of its batch: it is ignored
        # (and so deleted) like any other message that is not a Support Case Update.
        try:
            return parse_message(message.get("Body"))
        except Exception as error:  # noqa: BLE001 - the boundary for hostile message bodies
            return Ignored(f"unreadable message ({type(error).__name__})")

    def process(self, messages: list[dict[str, Any]]) -> None:
        """Handle one received batch: each distinct event once, then delete and back off in two calls."""
        if not messages:
            return
        self._note_received(messages)
        groups: dict[tuple[str, str, str], tuple[CaseEvent, list[dict[str, Any]]]] = {}
        to_delete: list[dict[str, Any]] = []
        for message in messages:
            event = self._parse(message)
            if isinstance(event, Ignored):
                self._ignore(message, event)
                to_delete.append(message)
            elif event.key in groups:
                groups[event.key][1].append(message)
                self._count("duplicates")
            else:
                groups[event.key] = (event, [message])
        if groups:
            with self._lock:
                self._last_event_at = self._clock()
            if self.watch is not None:
                self.watch.note_event()
        to_retry: list[tuple[dict[str, Any], int]] = []
        unhandled: list[dict[str, Any]] = []
        for event, group in groups.values():
            if self._stop.is_set():
                unhandled.extend(group)
                continue
            outcome = self._handle(event)
            if outcome.done:
                to_delete.extend(group)
                continue
            first = group[0]
            delay = retry_delay(_receive_count(first), self.options.retry_base_seconds, self.options.retry_max_seconds)
            logger.info("event %s for %s: retry in %d s (%s)", event.event_name, event.case_id, delay, outcome.reason)
            to_retry.append((first, delay))
            # One copy is enough to carry the retry.
            to_delete.extend(group[1:])
        self._delete(to_delete)
        self._change_visibility(to_retry, "retried")
        self._release(unhandled)

    def _handle(self, event: CaseEvent) -> Outcome:
        try:
            outcome = self.handler(event)
        except Exception as error:  # the handler's boundary: a bug there is retried, not fatal
            logger.exception("event handler failed on %s %s", event.event_name, event.case_id)
            return Outcome.retry_later(f"handler raised {type(error).__name__}")
        if outcome.done:
            self._count("handled")
        return outcome

    def _ignore(self, message: dict[str, Any], ignored: Ignored) -> None:
        self._count("ignored")
        # A foreign event is someone's routing choice; a malformed one is worth a look.
        log = logger.info if ignored.foreign else logger.warning
        log("deleting SQS message %s that is not a usable event: %s", message.get("MessageId"), ignored.reason)

    # Calls -------------------------------------------------------------------------------------

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for chunk in _chunks(messages, 10):
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            response = self.client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            # A failed delete only means a redelivery, which the handler's idempotence absorbs.
            self._report_failed("delete", response)
            self._count("deleted", len(response.get("Successful") or []))

    def _change_visibility(self, messages: Iterable[tuple[dict[str, Any], int]], counter: str) -> None:
        for chunk in _chunks(list(messages), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": seconds}
                for i, (m, seconds) in enumerate(chunk)
            ]
            response = self.client.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
            self._report_failed("change visibility of", response)
            self._count(counter, len(response.get("Successful") or []))

    def _release(self, messages: list[dict[str, Any]]) -> None:
        """Give back messages this worker will not handle (it is stopping): visible again at once, so
        the replica that takes over does not wait out their visibility timeout."""
        if not messages:
            return
        try:
            self._change_visibility(((m, 0) for m in messages), "released")
        except (ClientError, BotoCoreError) as error:
            logger.info(
                "could not give back %d messages (%s): visible again in %d s",
                len(messages),
                _describe(error),
                self.options.visibility_seconds,
            )

    def _refresh_stats(self) -> None:
        now = self._clock()
        if now < self._stats_due:
            return
        self._stats_due = now + self.options.stats_interval_seconds
        try:
            response = self.client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=QUEUE_ATTRIBUTES)
        except (ClientError, BotoCoreError) as error:
            # Only /healthz misses these figures; receiving goes on.
            logger.info("could not read the event queue's attributes (%s)", _describe(error))
            return
        attributes = response.get("Attributes") or {}
        with self._lock:
            self._queue_stats = {
                "queue_visible": _int(attributes.get("ApproximateNumberOfMessages")),
                "queue_in_flight": _int(attributes.get("ApproximateNumberOfMessagesNotVisible")),
                "queue_checked_at": _iso(now),
            }

    # Bookkeeping -------------------------------------------------------------------------------

    def _note_received(self, messages: list[dict[str, Any]]) -> None:
        now = self._clock()
        sent = [_int((m.get("Attributes") or {}).get("SentTimestamp")) for m in messages]
        newest = max((s for s in sent if s is not None), default=None)
        with self._lock:
            self._counts["received"] += len(messages)
            self._last_message_at = now
            if newest is not None:
                self._last_wait = max(0.0, now - newest / 1000.0)

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def _report_failed(self, action: str, response: dict[str, Any]) -> None:
        for failure in response.get("Failed") or []:
            logger.warning("could not %s an SQS message: %s %s", action, failure.get("Code"), failure.get("Message"))

    def _recovered(self) -> None:
        if self._errors:
            logger.info("event queue reachable again after %d failed calls", self._errors)
        with self._lock:
            self._errors = 0

    def _failed(self, description: str) -> None:
        with self._lock:
            self._errors += 1
            self._last_error = description
            errors = self._errors
        delay = min(self.options.error_base_seconds * 2 ** min(errors - 1, 20), self.options.error_max_seconds)
        logger.warning("event queue call failed (%s); retrying in %.1f s", description, delay)
        # Forget the stats schedule too: the next round asks again once the queue answers.
        self._stats_due = 0.0
        self._stop.wait(delay)


def _receive_count(message: dict[str, Any]) -> int:
    return _int((message.get("Attributes") or {}).get("ApproximateReceiveCount")) or 1


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        return f"AWS {error.response.get('Error', {}).get('Code') or 'error'}"
    return type(error).__name__


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch else None

"""Work that runs after Slack has its ack: a thread pool where jobs sharing a key run in order.

Listeners ack within Slack's 3 s and hand the slow part (AWS calls) here, so an ack never waits
for a free thread behind slow AWS calls; each job first lets Slack's burst be acked (bot.ack_first).
Replies in one case thread share a key, so they reach AWS in the order people wrote them.

JournalWork runs the records of the work journal (bot.store.journal) on that pool: leased, in
order per thread, retried with backoff until a deadline when AWS or Slack ask to wait, and only
then reported to the person. Order holds across replicas too: a record whose thread has an older
pending record (in the journal, whoever holds it) is put back for a moment instead of run.
JournalKeeper renews the leases this process holds, resumes records whose holder died, and prunes.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

import tenacity

from bot.ack_first import AckFirst, behind_requests, let_go_of_turn
from bot.errors import BotError
from bot.pool import ThreadPool
from bot.store.journal import Entry, Journal, Lease, LeaseLost

logger = logging.getLogger(__name__)

Task = Callable[[], None]
_Queued = tuple[Task, float]  # a job and when it was queued (time.monotonic())


class OrderedWork:
    def __init__(self, max_workers: int = 32, name: str = "work", gate: AckFirst | None = None) -> None:
        self.gate = gate or AckFirst()
        self._pool = ThreadPool(max_workers=max_workers, name=name)
        self._queues: dict[str, deque[_Queued]] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0

    def submit(self, job: Task, key: str | None = None) -> None:
        with self._lock:
            self._pending += 1
        self._enqueue(job, key)

    def defer(self, seconds: float, job: Task, key: str | None = None) -> None:
        """Submit `job` after `seconds`, counted as pending meanwhile; its key's queue runs on."""
        with self._lock:
            self._pending += 1
        timer = threading.Timer(seconds, self._enqueue, args=(job, key))
        timer.daemon = True
        timer.start()

    def _enqueue(self, job: Task, key: str | None) -> None:
        queued = (job, time.monotonic())
        try:
            if key is None:
                # Outside the lock, which a request thread takes before its ack (the replay claims' write):
                # held no longer than the queues need it.
                self._pool.submit(self._run, *queued).add_done_callback(self._count_if_cancelled(None))
                return
            with self._lock:
                queue = self._queues.get(key)
                if queue is not None:
                    queue.append(queued)  # a runner for this key is active and will take it
                    return
                self._queues[key] = deque([queued])
            self._pool.submit(self._drain, key).add_done_callback(self._count_if_cancelled(key))
        except RuntimeError:  # shut down meanwhile: a journal record resumes at the next start, other work is dropped
            self._forget(key)

    def _count_if_cancelled(self, key: str | None) -> Callable[[Future], None]:
        def done(future: Future) -> None:
            if future.cancelled():  # by shutdown, before a worker took it: it never runs
                self._forget(key)

        return done

    def _forget(self, key: str | None) -> None:
        """Jobs that will not run (shut down): no longer counted, so that wait_idle ends."""
        with self._lock:
            dropped = self._queues.pop(key, None) if key is not None else None
            self._pending -= len(dropped) if dropped else 1
            self._idle.notify_all()

    def _drain(self, key: str) -> None:
        while True:
            with self._lock:
                queue = self._queues[key]
                if not queue:
                    del self._queues[key]
                    return
                queued = queue.popleft()
            self._run(*queued)

    def _run(self, job: Task, queued_at: float) -> None:
        try:
            self.gate.wait_until_quiet(queued_at)
            with behind_requests(self.gate, takes_turns=True):
                job()
        except BaseException:  # noqa: BLE001 - the one boundary for work after an ack: log, never strand a key's queue
            logger.exception("background job failed")
        finally:
            with self._lock:
                self._pending -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """True once every submitted job has run (tests and shutdown use it)."""
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


# The journal's runner ----------------------------------------------------------------------


ORDER_FIRST_WAIT_SECONDS = 0.05  # waiting for an older record of the thread in another replica
ORDER_MAX_WAIT_SECONDS = 1.0


@dataclass(frozen=True)
class RetryPolicy:
    """How long work waits out throttling, 5xx and full disks before the person is told."""

    deadline_seconds: float = 600.0
    first_wait_seconds: float = 1.0
    max_wait_seconds: float = 30.0


@dataclass
class Job:
    """One journal record being worked on, under its lease."""

    journal: Journal
    lease: Lease
    entry: Entry

    @property
    def data(self) -> dict[str, Any]:
        return self.entry.data

    @property
    def progress(self) -> dict[str, Any]:
        return self.entry.progress

    @property
    def ref(self) -> str:
        return self.entry.ref

    def save(self, **progress: Any) -> None:
        """Record progress before the step it announces, so a crash after the step knows to check."""
        self.entry = self.journal.save(self.lease, **progress)


class Handler(Protocol):
    """What a kind of journal record does, and how its person hears of a final failure."""

    def run(self, job: Job) -> dict[str, Any]: ...

    def failed(self, job: Job, error: BotError) -> None: ...


Done = Callable[[dict[str, Any] | None, BotError | None], None]


class JournalWork:
    def __init__(
        self,
        journal: Journal,
        work: OrderedWork,
        *,
        is_retryable: Callable[[BaseException], bool],
        retry: RetryPolicy | None = None,
    ) -> None:
        self.journal = journal
        self.work = work
        self.is_retryable = is_retryable
        self.retry = retry or RetryPolicy()
        self.handlers: dict[str, Handler] = {}
        self.stopping = threading.Event()

    def handle(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    def submit(self, lease: Lease, on_done: Done | None = None) -> None:
        """Run the record after the ack, in its thread's queue; `on_done` hears the outcome (else the
        handler tells the person of a failure). A lease from Journal.record or take knows its queue:
        then nothing here touches the store, as a listener calls this before Bolt answers Slack."""
        order = lease.order
        if order is None:  # a lease made without its record at hand (Journal.held)
            entry = self.journal.get(lease.key)
            order = entry.order if entry else None
        self.work.submit(lambda: self._run_and_report(lease, on_done), key=order)

    def run(self, lease: Lease) -> dict[str, Any]:
        """Run the record here and now; returns its outcome, raises the BotError that ended it.
        Older records of its order are not waited for: only what must happen before an answer
        (a card, a case opened from the console) runs here, and none of it sends a reply to AWS."""
        outcome, error = self._run(lease)
        if error is not None:
            raise error
        return outcome or {}

    def resume(self, *, at_start: bool = False) -> int:
        """Take every pending record nobody holds and queue it, oldest first in its thread."""
        resumed = 0
        for entry in self.journal.resumable(at_start=at_start):
            if entry.kind not in self.handlers:
                continue
            lease = self.journal.take(entry.key, at_start=at_start)
            if lease is None:
                continue  # someone took it meanwhile
            resumed += 1
            self.work.submit(functools.partial(self._run_and_report, lease, None), key=entry.order)
        return resumed

    def stop(self) -> None:
        self.stopping.set()

    # Inside ------------------------------------------------------------------------------

    def _sleep(self, seconds: float) -> None:
        let_go_of_turn()  # other jobs' AWS answers need no wait for a backoff
        self.stopping.wait(seconds)  # a stopping bot does not sit out a backoff

    def _run_and_report(self, lease: Lease, on_done: Done | None, wait: float = ORDER_FIRST_WAIT_SECONDS) -> None:
        order = self._waits_for_older(lease)
        if order is not None:
            if self.stopping.is_set():
                try:
                    self.journal.release(lease)  # the next start (or another replica) takes it in turn
                except Exception:  # noqa: BLE001 - let go anyway (release drops it): its lease runs out
                    logger.warning("could not give back %s", lease.key, exc_info=True)
                if on_done is not None:
                    on_done(None, None)
                return
            # Deferred, not slept on: an older record of the thread may be queued here behind this one.
            later = functools.partial(self._run_and_report, lease, on_done, min(wait * 2, ORDER_MAX_WAIT_SECONDS))
            self.work.defer(wait, later, key=order)
            return
        outcome, error = self._run(lease)
        if on_done is not None:
            on_done(outcome, self._as_told(lease, error) if error is not None else None)
        elif error is not None:
            entry = self.journal.get(lease.key)
            handler = self.handlers.get(entry.kind) if entry else None
            if entry is not None and handler is not None:
                handler.failed(Job(self.journal, lease, entry), error)

    def _as_told(self, lease: Lease, error: BotError) -> BotError:
        """A failure as its person is told it: by the record's handler when it has more to say (what
        reached AWS, say), else as it is."""
        try:
            entry = self.journal.get(lease.key)
            told = getattr(self.handlers.get(entry.kind), "told", None) if entry else None
            return told(Job(self.journal, lease, entry), error) if told is not None and entry is not None else error
        except Exception:  # noqa: BLE001 - the store away: the failure as it is, rather than no answer
            logger.warning("could not say how %s ended", lease.key, exc_info=True)
            return error

    def _waits_for_older(self, lease: Lease) -> str | None:
        """The record's order while an older record of it is pending (in any replica), else None.

        An older record whose holder died is taken and queued here, so nothing waits on a dead
        replica longer than its lease. Its lease is renewed meanwhile with the others this process
        holds (JournalKeeper)."""
        try:
            entry = self.journal.get(lease.key)
        except Exception:  # noqa: BLE001 - the store away: _run waits it out with backoff
            return None
        if entry is None or entry.finished or entry.holder != lease.holder:
            return None  # _attempt sees why
        try:
            older = self.journal.older_pending(entry)
            for other in older:
                taken = self.journal.take(other.key)
                if taken is None:
                    continue  # held and alive: its holder runs it
                if other.kind in self.handlers:
                    self.work.submit(functools.partial(self._run_and_report, taken, None), key=other.order)
                else:
                    self.journal.release(taken)
        except Exception:  # noqa: BLE001 - the store away: look again shortly, as for an older record
            logger.warning("could not check the order of %s", lease.key, exc_info=True)
            return entry.order
        return entry.order if older else None

    def _run(self, lease: Lease) -> tuple[dict[str, Any] | None, BotError | None]:
        """(outcome, None) when done, (None, error) when it failed for good, (None, None) when
        someone else carries it on or the bot is stopping."""
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_delay(self.retry.deadline_seconds) | tenacity.stop_when_event_set(self.stopping),
            wait=tenacity.wait_random_exponential(
                multiplier=self.retry.first_wait_seconds, max=self.retry.max_wait_seconds
            ),
            retry=tenacity.retry_if_exception(self.is_retryable),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            outcome = retrying(self._attempt, lease)
        except LeaseLost:
            return None, None
        except BotError as error:
            return self._end(lease, error)
        except Exception as exc:  # noqa: BLE001 - a library raised something new: never leave it pending forever
            if self.stopping.is_set() or self.is_retryable(exc):
                return self._end(lease, BotError("unexpected_error"), cause=exc)
            logger.exception("journal record %s failed", lease.key)
            return self._end(lease, BotError("unexpected_error"))
        if outcome is None:
            return None, None
        return outcome, None

    def _attempt(self, lease: Lease) -> dict[str, Any] | None:
        entry = self.journal.get(lease.key)
        if entry is None or entry.holder != lease.holder:
            raise LeaseLost(lease.key)
        if entry.finished:
            return entry.outcome
        handler = self.handlers[entry.kind]
        outcome = handler.run(Job(self.journal, lease, entry)) or {}
        self.journal.finish(lease, **outcome)
        return outcome

    def _end(
        self, lease: Lease, error: BotError, cause: BaseException | None = None
    ) -> tuple[dict[str, Any] | None, BotError | None]:
        if self.stopping.is_set():
            # Not a failure: the next start (or another replica) takes it up where it stopped.
            self.journal.release(lease)
            return None, None
        if cause is not None:
            logger.warning("journal record %s gave up after retrying: %s", lease.key, cause)
        try:
            self.journal.fail(lease, error=error.key)
        except LeaseLost:
            return None, None
        except Exception:  # noqa: BLE001 - the store itself failing: the record stays pending, resumed later
            logger.exception("could not mark %s failed", lease.key)
        return None, error


class JournalKeeper:
    """A background loop: renew held leases, resume records whose holder died, prune old records."""

    name = "journal"

    def __init__(
        self,
        runner: JournalWork,
        prune: Callable[[], int],
        *,
        every_seconds: float | None = None,
        prune_every_seconds: float = 3600.0,
    ) -> None:
        self.runner = runner
        self.prune = prune
        self.every_seconds = every_seconds or runner.journal.lease_seconds / 3
        self.prune_every_seconds = prune_every_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="journal-keeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.runner.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def health(self) -> dict[str, Any]:
        return {"ticks": self.ticks, "held": self.runner.journal.held_count()}

    def tick(self) -> None:
        self.runner.journal.renew_held()
        self.runner.resume()

    def _loop(self) -> None:
        last_prune = time.monotonic()
        while not self._stop.wait(self.every_seconds):
            try:
                self.tick()
                if time.monotonic() - last_prune >= self.prune_every_seconds:
                    last_prune = time.monotonic()
                    self.prune()
            except Exception:  # the loop's one boundary: a failing store must not end renewals for good
                logger.exception("journal keeper tick failed")
            self.ticks += 1

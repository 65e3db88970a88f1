"""When work after an ack may run: once Slack's burst of requests has been acked (bot.work runs it), and
once the store has confirmed that its request is served here first (a replay is served nowhere else).
Once running, it yields again whenever it is about to spend the interpreter lock on something large
(an AWS answer to parse, a Slack call to make) while requests are being answered: yield_to_requests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

logger = logging.getLogger(__name__)


def _first_everywhere() -> bool:
    return True


# Set by the HTTP door for the time Bolt answers a request: whether the store confirms the request's
# replay claim (bot.store.claims). Requests that never pass the door (Socket Mode's, over Slack's own
# authenticated socket) cannot be replayed.
_served_first: ContextVar[Callable[[], bool]] = ContextVar("served_first", default=_first_everywhere)


@contextmanager
def answering(served_first: Callable[[], bool]) -> Iterator[None]:
    """While Bolt answers a request admitted with this confirmation of its claim."""
    token = _served_first.set(served_first)
    try:
        yield
    finally:
        _served_first.reset(token)


def served_first() -> Callable[[], bool]:
    """The confirmation of the request this thread is answering, for the work it leaves for after its
    ack: called there, it waits for the store's word (True: run; False: another replica served the
    request, a replay) and raises StoreError when the store cannot give it."""
    return _served_first.get()


class AckFirst:
    """Work after an ack yields to requests still being answered: Slack's 3 s clock runs on those.

    Python threads share one interpreter lock, so a burst of after-ack AWS calls would otherwise
    slow the acks of the requests behind them (measured: `python -m bench.ack`). A job waits until
    no request has been in flight for `settle_seconds` (Slack's requests come in bursts, and a
    moment between two of them is not the end of the burst), but never longer than
    `max_wait_seconds` from when it was queued: under a steady stream of requests, AWS work is late
    by at most that, not by that once for every job queued before it on its key.

    A quiet moment releases the waiting jobs `pace_seconds` apart, each only while it is still
    quiet: released together, their first CPU work (botocore building and signing twenty requests)
    ran all at once, and a burst arriving meanwhile was acked behind all of it. Paced, a new burst
    finds at most a job or two started, and holds back the rest.

    A started job yields again at its later steps (yield_to_requests, through wait_for_lull: no
    turnstile, no pace), each for at most `step_max_wait_seconds`: AWS answers the jobs a burst
    started all at once, seconds later, and parsing, rendering and posting twenty of them (about
    8 ms of CPU each for `show`) held the next burst's acks back. The cap is short, as under a
    steady stream of requests every step of every job pays it. Steps are not paced: paced, every
    step in the process went a pace after the one before even with no request in flight (thirty
    jobs posting three messages each took 0.47 s, against 0.15 s outside jobs). The cost: the steps
    a lull releases run together, and a burst arriving in the next few milliseconds is acked behind
    them (twenty jobs of three 8 ms steps, in a microbenchmark: about 200 ms at the median), as it
    was before steps yielded at all.

    So a job's step that handles an AWS answer (parsing it, then rendering and recording what it
    says, up to the job's next Slack call, next AWS request or end) also takes a turn: `step_runners`
    jobs at a time, each waiting for one at most what is left of its step's cap. Twenty answers that
    arrive together then run one after another, and a burst that comes meanwhile shares the
    interpreter with one job thread, not twenty. The settle is short for the same reason: at 0.1 s,
    bursts 0.1 s apart left no lull at all, and every step waited out its cap and then ran in the
    middle of a burst. Measured with AWS answering during the bursts (`python -m bench.ack --together
    --control --rounds 20`): the bots' `show` p99 was 1.5-2x the bare app's in 3 of 5 runs with
    neither change, and over 1.5x in 1 of 13 runs with both.
    """

    def __init__(
        self,
        max_wait_seconds: float = 1.0,
        settle_seconds: float = 0.02,
        pace_seconds: float = 0.005,
        step_max_wait_seconds: float = 0.25,
        step_runners: int = 1,
    ) -> None:
        self.max_wait_seconds = max_wait_seconds
        self.step_max_wait_seconds = step_max_wait_seconds
        self.settle_seconds = settle_seconds
        self.pace_seconds = pace_seconds
        self._in_flight = 0
        self._last_finished = float("-inf")
        self._next_release = float("-inf")
        self._quiet = threading.Condition()
        # One job at a time watches for the quiet, the others queue behind it: a request that ends
        # wakes one thread, not every job waiting.
        self._turnstile = threading.Lock()
        self.turns = threading.BoundedSemaphore(step_runners)  # given back twice: an error, not a runner more

    def request_started(self) -> None:
        with self._quiet:
            self._in_flight += 1

    def request_finished(self) -> None:
        with self._quiet:
            self._in_flight -= 1
            self._last_finished = time.monotonic()
            if self._in_flight == 0:
                self._quiet.notify_all()

    def wait_until_quiet(self, queued_at: float | None = None) -> None:
        """`queued_at` (time.monotonic()): when the job was queued; the wait ends max_wait_seconds after it."""
        now = time.monotonic()
        deadline = (now if queued_at is None else queued_at) + self.max_wait_seconds
        if deadline <= now or not self._turnstile.acquire(timeout=deadline - now):
            return
        try:
            self._wait_for_quiet(deadline)
        finally:
            self._turnstile.release()

    def wait_for_lull(self, since: float | None = None, max_wait_seconds: float | None = None) -> bool:
        """Returns True once no request has been in flight for `settle_seconds`, or False `max_wait_seconds`
        (the gate's own by default) after `since` (time.monotonic(); default now). Unlike wait_until_quiet,
        no turnstile and no pace: those space out job starts, and a step or a claim write taking
        its turn among them waited 5 ms for every other step in the process, requests or none."""
        most = self.max_wait_seconds if max_wait_seconds is None else max_wait_seconds
        return self._wait_for_quiet((time.monotonic() if since is None else since) + most, paced=False)

    def _wait_for_quiet(self, deadline: float, *, paced: bool = True) -> bool:
        """Until `settle_seconds` without a request in flight (and, `paced`, a pace after the last
        release): True; or until the deadline: False."""
        with self._quiet:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return False
                if self._in_flight == 0:
                    settled_at = self._last_finished + self.settle_seconds
                    release_at = max(settled_at, self._next_release) if paced else settled_at
                    if now >= release_at:
                        if paced:
                            self._next_release = now + self.pace_seconds
                        return True
                    self._quiet.wait(min(release_at, deadline) - now)
                else:
                    self._quiet.wait(deadline - now)


# The gate whose requests this thread's work runs behind: set for an after-ack job's time (bot.work)
# and for the background workers' threads (the poller, the digest scheduler, the event consumer).
# Request threads and the prompt pool (a modal's trigger_id lasts 3 s) have none.
_gate_ahead: ContextVar[AckFirst | None] = ContextVar("gate_ahead", default=None)
# The thread of the after-ack job running in this context, for the job's time only: a job ends, so a
# turn it holds is given back; a background worker sleeps between its cycles and must not hold one
# meanwhile; and a thread that runs a copy of the job's context (bot.pool.map_in_callers_context) has
# no end at which to give one back.
_takes_turns: ContextVar[int | None] = ContextVar("takes_turns", default=None)
# The gate whose turn this context holds, and the thread holding it: a thread started with a copy of
# the context (bot.pool.map_in_callers_context) does not hold its parent's turn.
_turn_held: ContextVar[tuple[AckFirst, int] | None] = ContextVar("turn_held", default=None)


@contextmanager
def behind_requests(gate: AckFirst | None, *, takes_turns: bool = False) -> Iterator[None]:
    """While this thread's work yields to `gate`'s requests at its steps (None: it does not), and, an
    after-ack job (`takes_turns`), takes a turn for each step that handles an AWS answer."""
    token = _gate_ahead.set(gate)
    turns = _takes_turns.set(threading.get_ident() if takes_turns else None)
    try:
        yield
    finally:
        let_go_of_turn()
        _takes_turns.reset(turns)
        _gate_ahead.reset(token)


def running_behind(gate: AckFirst | None, work: Callable[[], None]) -> Callable[[], None]:
    """`work` as a thread's target, behind `gate`'s requests (a thread starts with an empty context)."""

    def run() -> None:
        with behind_requests(gate):
            work()

    return run


def yield_to_requests(*, handles_answer: bool = False) -> None:
    """In an after-ack job or a background worker, wait (briefly) until no request is being answered;
    elsewhere, nothing. A turn this thread holds is given back first.

    Called by the adapters before work that holds the interpreter lock for a while: botocore's
    parse of an AWS answer (bot.aws.gateway, `handles_answer`: an after-ack job then also takes a
    turn, held until its next yield, its next AWS request or its end) and each Slack call
    (bot.slack.client).
    """
    gate = _gate_ahead.get()
    if gate is None:
        return
    let_go_of_turn()
    since = time.monotonic()
    gate.wait_for_lull(since, gate.step_max_wait_seconds)
    if handles_answer and _takes_turns.get() == threading.get_ident():
        left = since + gate.step_max_wait_seconds - time.monotonic()
        if gate.turns.acquire(timeout=max(0.0, left)):  # else the step runs anyway, as after the lull's cap
            _turn_held.set((gate, threading.get_ident()))


def let_go_of_turn() -> None:
    """Gives back the turn this thread holds, if any: before it waits (an AWS request on the wire, a
    pool of threads working for it) and at its job's end."""
    held = _turn_held.get()
    if held is not None and held[1] == threading.get_ident():
        _turn_held.set(None)
        try:
            held[0].turns.release()
        except ValueError:  # given back twice: a fault in this module, never a reason to fail a job's call
            logger.error("a turn was given back twice", exc_info=True)

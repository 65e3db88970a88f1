"""Work after an ack yields to the requests being answered at its later steps too, not only at its
start: AWS answers arrive seconds after the jobs a burst started, all together, and parsing,
rendering and posting them held the acks of the burst then arriving (`python -m bench.ack`)."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bot.ack_first import AckFirst, behind_requests, let_go_of_turn, yield_to_requests
from bot.bootstrap import sandbox_gateway
from bot.config import load_settings
from bot.domain import NewCase
from bot.pool import map_in_callers_context
from bot.slack.client import RateLimitedRespond, slack_client
from bot.store.claims import SharedClaims
from bot.store.tables import Store as SqliteStore
from bot.work import OrderedWork
from tests.cases.helpers import link_case, open_case_at_aws
from tests.cases.test_card_buttons import click
from tests.support.fake_slack import FakeSlack
from tests.support.harness import bot_env
from tests.support.replicas import wait_for
from tests.sync.helpers import communication_messages, linked_case

# A job starts at once whatever is in flight (its start is tested in test_work.py); its later steps
# wait as long as a test needs.
PATIENT = {"max_wait_seconds": 0, "step_max_wait_seconds": 60}


@pytest.fixture
def gated() -> Iterator[tuple[AckFirst, OrderedWork]]:
    gate = AckFirst(**PATIENT)
    work = OrderedWork(max_workers=2, gate=gate)
    yield gate, work
    work.shutdown()


def _runs_once_the_request_is_answered(gate: AckFirst, work: OrderedWork, step: Callable[[], Any]) -> None:
    done = threading.Event()
    gate.request_started()
    try:
        work.submit(lambda: (step(), done.set()))
        assert not done.wait(0.5), "the step ran while a request was being answered"
    finally:
        gate.request_finished()
    assert done.wait(30), "the request is answered: the step runs"


def test_an_aws_answer_to_an_after_ack_job_is_parsed_once_the_requests_in_flight_are_answered(
    sandbox: Any, gated: tuple[AckFirst, OrderedWork]
) -> None:
    gateway = sandbox_gateway(sandbox.url)
    case_id = gateway.create_case(NewCase("Yielding", "general-info", "general-guidance", "low", "Body"))

    _runs_once_the_request_is_answered(*gated, lambda: gateway.get_case(case_id))


def test_a_slack_call_of_an_after_ack_job_waits_for_the_requests_in_flight(
    fake_slack: FakeSlack, tmp_path: Path, gated: tuple[AckFirst, OrderedWork]
) -> None:
    client = slack_client(load_settings(bot_env(fake_slack, tmp_path / "bot.sqlite")))

    _runs_once_the_request_is_answered(*gated, lambda: client.chat_postMessage(channel="C1", text="later"))
    assert [m["text"] for m in fake_slack.messages("C1")] == ["later"]


def test_an_answer_on_a_response_url_from_an_after_ack_job_waits_for_the_requests_in_flight(
    fake_slack: FakeSlack, gated: tuple[AckFirst, OrderedWork]
) -> None:
    respond = RateLimitedRespond(response_url=fake_slack.response_url())

    _runs_once_the_request_is_answered(*gated, lambda: respond(text="later"))
    assert [r["text"] for r in fake_slack.responses()] == ["later"]


def test_outside_after_ack_jobs_aws_and_slack_calls_do_not_wait_for_the_requests_in_flight(
    sandbox: Any, fake_slack: FakeSlack, tmp_path: Path, gated: tuple[AckFirst, OrderedWork]
) -> None:
    """A request's own thread (an ack that opens a modal, loads a menu) never waits for the requests
    in flight, its own among them; nor do the prompt pool and the background workers. (review20: the
    first version of this test timed nothing, and passed with a wait on every thread.)"""
    gate, _ = gated
    gateway = sandbox_gateway(sandbox.url)
    client = slack_client(load_settings(bot_env(fake_slack, tmp_path / "bot.sqlite")))
    respond = RateLimitedRespond(response_url=fake_slack.response_url())
    client.chat_postMessage(channel="C0", text="warm")  # connections set up out of the timing
    gate.request_started()
    try:
        started = time.monotonic()
        gateway.create_case(NewCase("At once", "general-info", "general-guidance", "low", "Body"))
        for n in range(10):
            client.chat_postMessage(channel="C1", text=f"at once {n}")
        respond(text="at once")
        took = time.monotonic() - started
    finally:
        gate.request_finished()
    # Twelve local calls take a few hundredths of a second; a wait of a quarter second on each, 3 s.
    assert took < 2, f"calls off a job took {took:.1f} s while a request was in flight"


# review20: steps took their turn on the turnstile and the pace that space out job starts, so with no
# request in flight at all every step in the process went 5 ms after the one before, and job starts
# and PostgreSQL's claim writes queued behind them. A pace of seconds makes that wait unmistakable.
SLOW_PACE = {"max_wait_seconds": 60, "settle_seconds": 0.01, "pace_seconds": 2.0, "step_max_wait_seconds": 60}


def _stepping(gate: AckFirst, stop: threading.Event, count: int = 10) -> list[threading.Thread]:
    """`count` threads running after-ack jobs that keep reaching a step (an AWS answer, a Slack call)."""

    def stepping() -> None:
        with behind_requests(gate):
            while not stop.is_set():
                yield_to_requests()
                time.sleep(0.01)

    threads = [threading.Thread(target=stepping, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads


def test_with_no_request_in_flight_the_steps_of_concurrent_jobs_do_not_take_turns(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    gate = AckFirst(**{**SLOW_PACE, "max_wait_seconds": 0})  # jobs start at once: only their steps count
    work = OrderedWork(max_workers=10, gate=gate)
    client = slack_client(load_settings(bot_env(fake_slack, tmp_path / "bot.sqlite")))

    def posts() -> None:
        for n in range(3):
            client.chat_postMessage(channel="C1", text=f"m{n}")

    try:
        for _ in range(10):
            work.submit(posts)
        assert work.wait_idle(30), "the posts took turns, a pace apart, with no request in flight"
    finally:
        work.shutdown()
    assert len(fake_slack.messages("C1")) == 30


def test_a_job_starts_and_a_claim_is_written_while_other_jobs_step_and_no_request_is_in_flight(
    tmp_path: Path,
) -> None:
    gate = AckFirst(**SLOW_PACE)
    work = OrderedWork(max_workers=2, gate=gate)
    store = SqliteStore(str(tmp_path / "state" / "bot.sqlite"))  # SharedClaims' wait is the same on any table
    claims = SharedClaims(store.table("requests"), wait_for_lull=gate.wait_for_lull, confirm_timeout=60)
    stop = threading.Event()
    steppers = _stepping(gate, stop)
    try:
        time.sleep(0.3)
        started = threading.Event()
        work.submit(started.set)
        assert started.wait(20), "the job's start queued behind the other jobs' steps"
        pending = claims.admit("v0=while-stepping", 1)
        assert pending is not None
        confirmed = threading.Event()
        threading.Thread(target=lambda: (pending.won(), confirmed.set()), daemon=True).start()
        assert confirmed.wait(20), "the claim's write queued behind the other jobs' steps"
    finally:
        stop.set()
        for thread in steppers:
            thread.join(5)
        work.shutdown()
        claims.close()
        store.close()


def test_under_a_steady_stream_of_requests_a_step_waits_briefly_not_forever() -> None:
    gate = AckFirst(max_wait_seconds=0, step_max_wait_seconds=0.05)
    work = OrderedWork(max_workers=2, gate=gate)
    done = threading.Event()
    gate.request_started()  # never answered
    try:
        work.submit(lambda: (yield_to_requests(), done.set()))
        assert done.wait(30)
    finally:
        gate.request_finished()
        work.shutdown()


def test_a_poll_cycle_posts_an_aws_reply_once_the_requests_in_flight_are_answered(bot_factory: Any) -> None:
    """The background workers yield too: a poll cycle parses AWS's answers and posts to Slack on a
    thread of its own, and held the acks of a burst arriving meanwhile (several accounts, each on a
    thread of the cycle's pool: tests/accounts/test_behind_requests.py)."""
    bot = bot_factory()
    case, thread = linked_case(bot)
    bot.sandbox.add_aws_reply(case.case_id, "Posted behind the acks.")
    gate = bot.services.work.gate
    gate.step_max_wait_seconds = 60
    gate.request_started()
    try:
        bot.start_workers()  # the poller's first cycle runs at once
        time.sleep(1.5)
        assert communication_messages(bot, "C1", thread) == [], "posted while a request was being answered"
    finally:
        gate.request_finished()
    wait_for(lambda: communication_messages(bot, "C1", thread), 30, "the AWS reply in the thread")


def test_an_accounts_pool_carries_its_callers_context() -> None:
    """A poll cycle's accounts, a digest's and a search's each run on a pool thread of their own."""
    gate = AckFirst(max_wait_seconds=0, step_max_wait_seconds=60)
    seen: list[bool] = []

    def one(account: str) -> str:
        started = time.monotonic()
        yield_to_requests()
        seen.append(time.monotonic() - started > 0.5)
        return account.upper()

    gate.request_started()
    with ThreadPoolExecutor(max_workers=4) as pool, behind_requests(gate):
        threading.Timer(1.0, gate.request_finished).start()
        assert map_in_callers_context(pool, one, ["a", "b", "c"]) == ["A", "B", "C"]
    assert seen == [True, True, True], "each account's work waited for the request in flight"


def test_a_step_waits_out_the_settle_after_the_last_request_not_only_its_end() -> None:
    """Slack's requests come in bursts: a moment with none in flight is not the end of one (review21:
    no test held the settle of a step)."""
    gate = AckFirst(max_wait_seconds=0, settle_seconds=3.0, step_max_wait_seconds=60)
    work = OrderedWork(max_workers=2, gate=gate)
    done = threading.Event()
    gate.request_started()
    try:
        work.submit(lambda: (yield_to_requests(), done.set()))
        time.sleep(0.2)
    finally:
        gate.request_finished()
    try:
        assert not done.wait(1.5), "the step ran before the settle after the last request had passed"
        assert done.wait(30), "the settle passed: the step runs"
    finally:
        work.shutdown()


# Taking turns (bench.ack --together --control --rounds 20): AWS answers twenty jobs at once, and the
# twenty steps that handle them ran side by side; a burst arriving meanwhile shared the interpreter
# with twenty job threads instead of one, and the bots' `show` p99 reached 2x the bare app's.
TURNS = {"max_wait_seconds": 0, "settle_seconds": 0.01, "step_max_wait_seconds": 30}


def _turn_free(gate: AckFirst) -> bool:
    """Whether a turn is free now (looked at without keeping it)."""
    free = gate.turns.acquire(blocking=False)
    if free:
        gate.turns.release()
    return free


def _on_every_client(gateway: Any, event: str, hook: Callable[..., None]) -> None:
    """`hook` on botocore's `event` of each of the gateway's clients (its retrying one and its single-try one)."""
    for client in (gateway.client, gateway._single):
        client.meta.events.register(event, hook)


def _run_as_jobs(gate: AckFirst, *jobs: Callable[[], None], timeout: float = 60) -> None:
    """Each of `jobs` as an after-ack job behind `gate`, in queues of their own; returns once all ran."""
    work = OrderedWork(max_workers=len(jobs), gate=gate)
    try:
        for n, job in enumerate(jobs):
            work.submit(job, key=f"case-{n}")
        assert work.wait_idle(timeout=timeout)
    finally:
        work.shutdown()


def _handling_answers(gate: AckFirst, count: int, hold: float, then: Callable[[], None] = lambda: None) -> list[tuple]:
    """`count` after-ack jobs that each take a turn (an AWS answer arrived), spend `hold` seconds on it,
    then run `then`; the (start, end) of each one's turn, in the order they ran."""
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def job() -> None:
        yield_to_requests(handles_answer=True)
        started = time.monotonic()
        time.sleep(hold)  # the CPU work of parsing, rendering and recording, as a test can hold it
        with lock:
            spans.append((started, time.monotonic()))
        then()

    _run_as_jobs(gate, *[job] * count)
    return sorted(spans)


def test_after_ack_jobs_handle_aws_answers_one_at_a_time() -> None:
    spans = _handling_answers(AckFirst(**TURNS), count=4, hold=0.2)
    overlaps = [(a, b) for a, b in zip(spans, spans[1:], strict=False) if b[0] < a[1] - 0.01]
    assert not overlaps, f"two jobs handled an AWS answer at the same time: {spans}"


def test_as_many_jobs_as_the_gate_has_runners_handle_answers_together() -> None:
    spans = _handling_answers(AckFirst(**TURNS, step_runners=2), count=2, hold=3.0)
    assert spans[1][0] < spans[0][1], f"two runners, yet the jobs ran one after the other: {spans}"


def test_a_job_gives_its_turn_back_at_its_next_slack_call_and_when_it_fails() -> None:
    gate = AckFirst(**TURNS)

    def slack_call_then_wait() -> None:
        yield_to_requests()  # what a Slack call does first (bot.slack.client)
        time.sleep(1.0)  # the call on the wire: the turn is not needed meanwhile

    spans = _handling_answers(gate, count=2, hold=0.05, then=slack_call_then_wait)
    assert spans[1][0] < spans[0][1] + 0.5, f"the next job waited for the first one's Slack call: {spans}"

    def fail() -> None:
        raise RuntimeError("a job that fails after handling its answer")

    spans = _handling_answers(gate, count=3, hold=0.05, then=fail)
    assert len(spans) == 3 and gate.turns.acquire(blocking=False), "a failed job kept its turn"
    gate.turns.release()


def test_a_turn_held_too_long_holds_the_next_job_back_no_longer_than_its_steps_cap() -> None:
    gate = AckFirst(**{**TURNS, "step_max_wait_seconds": 0.3})
    spans = _handling_answers(gate, count=2, hold=3.0)
    assert spans[1][0] - spans[0][0] < 2.0, f"the second job waited for the whole of the first one's turn: {spans}"


def test_threads_working_for_a_job_do_not_give_back_its_turn_and_it_gives_it_back_to_wait_for_them() -> None:
    gate = AckFirst(**TURNS)
    seen: list[bool] = []

    def account(name: str) -> str:
        yield_to_requests(handles_answer=True)  # an account's AWS answer: no turn, as nothing would give it back
        seen.append(gate.turns.acquire(timeout=5))  # the job gave its turn back before waiting for its pool
        gate.turns.release()
        return name

    def job() -> None:
        yield_to_requests(handles_answer=True)
        copy = contextvars.copy_context()
        threading.Thread(target=copy.run, args=(let_go_of_turn,)).start()  # not this thread's turn to give
        time.sleep(0.2)
        seen.append(not gate.turns.acquire(blocking=False))
        with ThreadPoolExecutor(max_workers=2) as pool:
            map_in_callers_context(pool, account, ["prod", "staging"])

    _run_as_jobs(gate, job)
    assert seen == [True, True, True], "a copy of the job's context gave its turn back or took one, or the job kept it"
    assert gate.turns.acquire(blocking=False) and not gate.turns.acquire(blocking=False), "one turn, as given"


def test_an_aws_request_gives_back_the_turn_while_it_waits_for_aws(sandbox: Any) -> None:
    """A job that handled one answer and then asks AWS again holds no turn while AWS answers."""
    gateway = sandbox_gateway(sandbox.url)
    case_id = gateway.create_case(NewCase("Turns", "general-info", "general-guidance", "low", "Body"))
    gate = AckFirst(**TURNS)
    waiting = threading.Event()

    held: list[bool] = []

    def first_answer_then_a_slow_request() -> None:
        gateway.get_case(case_id)  # takes a turn to parse the answer, keeps it to handle what it says
        held.append(not gate.turns.acquire(blocking=False))
        sandbox.set_latency(6.0)
        waiting.set()
        gateway.get_case(case_id)

    work = OrderedWork(max_workers=2, gate=gate)
    try:
        work.submit(first_answer_then_a_slow_request, key="slow")
        assert waiting.wait(30)
        assert gate.turns.acquire(timeout=4), "the turn was held while AWS was being waited for"
        gate.turns.release()
        assert work.wait_idle(timeout=30)
        assert held == [True], "the turn taken to parse an answer was given back before the job handled it"
    finally:
        work.shutdown()
        sandbox.set_latency(0)


def test_a_throttled_aws_request_gives_back_the_turn_before_botocore_sleeps_to_retry(sandbox: Any) -> None:
    """review25: botocore asks whether to retry after every attempt, and sleeps after a failed one."""
    gateway = sandbox_gateway(sandbox.url)
    case_id = gateway.create_case(NewCase("Turns", "general-info", "general-guidance", "low", "Body"))
    gate = AckFirst(**TURNS)
    free_before_retry: list[bool] = []

    def after_the_gateways_own_hooks(caught_exception: Any = None, response: Any = None, **_: Any) -> None:
        if caught_exception is not None or (response is not None and response[0].status_code >= 300):
            free_before_retry.append(_turn_free(gate))

    _on_every_client(gateway, "needs-retry.support", after_the_gateways_own_hooks)

    def answered_then_throttled() -> None:
        gateway.get_case(case_id)  # holds a turn to handle the answer
        sandbox.inject_fault("DescribeCases", "ThrottlingException", count=1)
        gateway.get_case(case_id)

    _run_as_jobs(gate, answered_then_throttled)
    assert free_before_retry == [True], f"the turn was held through botocore's retry sleep: {free_before_retry}"


def test_a_failure_told_through_bolts_own_client_after_the_ack_waits_for_the_requests_in_flight(
    bot_factory: Any,
) -> None:
    """Bolt builds a plain WebClient for every request; a listener's job told its failures through it
    (here: a resolve button clicked by someone who is not the case's steward) without yielding."""
    bot = bot_factory()
    case = open_case_at_aws(bot)
    link_case(bot, case, user="U1", channel="C1")
    card = link_case(bot, case, user="U2", channel="C2")
    gate = bot.services.work.gate
    gate.max_wait_seconds, gate.step_max_wait_seconds = 0, 60
    arrived = threading.Event()

    def a_request_arrives(**_: Any) -> None:  # once AWS has answered: only the Slack call is left to wait
        if not arrived.is_set():
            gate.request_started()
            arrived.set()

    _on_every_client(bot.services.gateway, "after-call.support", a_request_arrives)
    try:
        click(bot, card, "case_resolve", user="U2")
        assert arrived.wait(30)
        time.sleep(1.5)
        assert bot.slack.calls("chat.postEphemeral") == [], "told while a request was being answered"
    finally:
        if arrived.is_set():
            gate.request_finished()
    [refusal] = bot.slack.wait_for("chat.postEphemeral", timeout=30)
    assert "<@U1>" in refusal.params["text"]


def test_the_next_aws_call_gives_back_the_turn_before_it_is_signed(sandbox: Any) -> None:
    """review27: signing may first ask STS for fresh credentials, a round trip of its own."""
    gateway = sandbox_gateway(sandbox.url)
    case_id = gateway.create_case(NewCase("Turns", "general-info", "general-guidance", "low", "Body"))
    gate = AckFirst(**TURNS)
    free_when_signed: list[bool] = []

    def when_signed(**_: Any) -> None:
        free_when_signed.append(_turn_free(gate))

    _on_every_client(gateway, "request-created.support", when_signed)
    _run_as_jobs(gate, lambda: (gateway.get_case(case_id), gateway.get_case(case_id)))
    assert free_when_signed == [True, True], "the turn taken for one answer was held while the next call was signed"

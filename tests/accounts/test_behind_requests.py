"""Work behind the requests' gate across accounts: each account's AWS answers are parsed on a pool thread
of its own, which carries the caller's gate (bot.pool.map_in_callers_context). From review22, which
found the case list across accounts (the poller's watch scan, a search) left on pool.map."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from bot.ack_first import AckFirst, behind_requests
from tests.accounts.e2e import open_case_in

PATIENT = {"max_wait_seconds": 0, "step_max_wait_seconds": 60}


def _waits_for_the_request_in_flight(gate: AckFirst, call: Callable[[], Any]) -> None:
    """`call`, behind `gate` (as in the poller, an after-ack job): it must not finish while a request is in flight."""
    done = threading.Event()

    def run() -> None:
        with behind_requests(gate):
            call()
        done.set()

    gate.request_started()
    try:
        threading.Thread(target=run, daemon=True).start()
        assert not done.wait(1.0), "an AWS answer was parsed while a request was being answered"
    finally:
        gate.request_finished()
    assert done.wait(30)


def test_a_case_list_across_accounts_behind_the_gate_yields_to_the_requests(accounts_bot: Any) -> None:
    """list_cases (the poller's watch scan every cycle, a search, `cases`)."""
    open_case_in(accounts_bot, "main", subject="A")
    open_case_in(accounts_bot, "stage", subject="B")
    routing = accounts_bot.services.routing
    assert routing is not None
    gate = accounts_bot.services.work.gate
    gate.step_max_wait_seconds = 60
    _waits_for_the_request_in_flight(gate, lambda: routing.list_cases(include_resolved=True))


def test_cases_described_across_accounts_behind_the_gate_yield_to_the_requests(accounts_bot: Any) -> None:
    a = open_case_in(accounts_bot, "main", subject="A")
    b = open_case_in(accounts_bot, "stage", subject="B")
    routing = accounts_bot.services.routing
    gate = accounts_bot.services.work.gate
    gate.step_max_wait_seconds = 60
    _waits_for_the_request_in_flight(gate, lambda: routing.describe_cases([a.case_id, b.case_id]))


def test_a_poll_cycle_across_accounts_posts_the_replies_once_the_requests_in_flight_are_answered(
    accounts_bot: Any,
) -> None:
    """A cycle over several accounts polls each on a thread of its pool."""
    from bot.sync.poster import ChannelPacer
    from tests.accounts.test_poll_across_accounts import link_in, thread_texts

    bot = accounts_bot
    bot.services.sync.poster.pacer = ChannelPacer(per_second=100, burst=100)
    sandbox = bot.sandbox.accounts
    main, main_ts = link_in(bot, "main", "C1", "Main case")
    stage, stage_ts = link_in(bot, "stage", "C1", "Stage case")
    bot.services.sync.run_cycle()  # the first look sets each thread's watermark
    sandbox.account("sandbox").add_aws_reply(main.case_id, "answer in main")
    sandbox.account("sandbox-3").add_aws_reply(stage.case_id, "answer in stage")
    gate = bot.services.work.gate
    gate.step_max_wait_seconds = 60

    def posted() -> bool:
        return any("answer in" in t for ts in (main_ts, stage_ts) for t in thread_texts(bot, "C1", ts))

    done = threading.Event()

    def cycle() -> None:
        with behind_requests(gate):  # as the poller's thread (running_behind)
            bot.services.sync.run_cycle()
        done.set()

    gate.request_started()
    try:
        threading.Thread(target=cycle, daemon=True).start()
        assert not done.wait(1.5)
        assert not posted(), "a poll cycle's account posted while a request was being answered"
    finally:
        gate.request_finished()
    assert done.wait(30)
    assert posted()

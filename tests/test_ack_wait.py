"""Bolt's listener executor in the bot: the request thread has the ack as soon as the listener acks.

Stock Bolt looks for the ack every 10 ms and sleeps in between, so every ack waited up to 10 ms
after it was ready and held a server thread meanwhile."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.app import AckWaitingExecutor, SignalingAck
from tests.support.harness import BotHarness


@pytest.fixture
def listeners():
    executor = AckWaitingExecutor(ThreadPoolExecutor(max_workers=2))
    yield executor
    executor.shutdown(wait=True)


def test_submit_returns_once_the_listener_acked_while_it_runs_on(listeners: AckWaitingExecutor) -> None:
    ack = SignalingAck(listeners.expect_ack())
    go, release = threading.Event(), threading.Event()

    def listener() -> None:
        go.wait(10)
        ack(text="answer")
        release.wait(10)  # after-ack work of the listener: the request thread does not wait for it

    # The listener acks only once `go` is set, a moment after submit started waiting: stock Bolt's
    # executor returns at once, before any ack.
    threading.Timer(0.2, go.set).start()
    future = listeners.submit(listener)
    try:
        assert ack.response is not None and ack.response.status == 200
        assert not future.done()
    finally:
        release.set()
    future.result(timeout=10)


def test_a_listener_that_ends_without_an_ack_does_not_hold_the_request_thread(listeners: AckWaitingExecutor) -> None:
    listeners.expect_ack()
    future = listeners.submit(lambda: None)

    assert future.done()


def test_a_submit_nothing_expects_does_not_wait(listeners: AckWaitingExecutor) -> None:
    release = threading.Event()
    future = listeners.submit(release.wait, 10)  # a lazy listener: no ack is awaited

    assert not future.done()
    release.set()
    future.result(timeout=10)


def test_commands_are_acked_through_the_waiting_executor(bot: BotHarness) -> None:
    assert isinstance(bot.app.listener_runner.listener_executor, AckWaitingExecutor)
    for text in ("help", "nonsense", "list"):
        assert bot.command(text).status == 200

"""Review40: gaps in issue 8's tests (leases at start-up, a reply under a full disk) and the bytecode
cache of 7771f58 (tests/conftest.py). Each test names what it pins."""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from pathlib import Path

import pytest

from bot.store.errors import StoreUnavailable
from tests.cases.helpers import fast_retries, link_case, open_case_at_aws, sent_texts
from tests.cases.test_modal import open_modal, values

ROOT = Path(__file__).resolve().parents[2]


def test_recovery_at_start_never_takes_the_form_the_live_listener_holds(bot):
    """Issue 8 #1, pinned on the lease itself: tests/cases/test_journal_defects.py's version passes with
    Journal._held_by_another returning False and resumable() ignoring _held_keys, as its uniform sandbox
    latency lets the reference check find the live CreateCase's case first. Recovery must not even take it."""
    view = open_modal(bot)
    bot.services.warm_up()
    bot.sandbox.set_latency(1.0)
    bot.requests.view_submission(view, values=values(subject="Opened once"))
    deadline = time.monotonic() + 10
    while bot.sandbox.calls["CreateCase"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    journal = bot.services.cases.journal
    [key] = [k for k, raw in journal.table.items() if k.startswith("create:") and isinstance(raw, dict)]
    bot.services.recover()
    bot.services.work.wait_idle(timeout=20)
    bot.sandbox.set_latency(0)
    assert journal.get(key).runs == 0, "start-up recovery took a record a live worker held"
    assert bot.sandbox.calls["CreateCase"] == 1


def test_a_full_disk_right_after_aws_took_a_reply_sends_it_once_and_confirms_it_after(bot):
    """The exactly-once promise under "disk full for 10 s" (2 s here), at its most sensitive line: AWS
    has the reply, and the journal cannot write that it was sent (nor anything else) for a while."""
    bot.slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    case = open_case_at_aws(bot)
    card = link_case(bot, case)
    fast_retries(bot, deadline_seconds=30)
    store = bot.services.store
    gateway = bot.services.cases.replies.gateway
    real_write, real_add = store._write, gateway.add_communication
    full = threading.Event()
    seen_at_aws: list[float] = []

    def write(change):
        if full.is_set():
            raise StoreUnavailable("database or disk is full")
        return real_write(change)

    def add_communication(*args, **kwargs):
        real_add(*args, **kwargs)
        seen_at_aws.append(time.monotonic())
        if not full.is_set() and len(seen_at_aws) == 1:
            full.set()
            threading.Timer(2.0, full.clear).start()

    store._write, gateway.add_communication = write, add_communication
    try:
        delivery = bot.user_message("C1", "sent while the disk filled", thread_ts=card["ts"])
        assert delivery.response.status == 200
        [reaction] = bot.slack.wait_for(
            "reactions.add", lambda c: c.params["timestamp"] == delivery.event["ts"], timeout=30
        )
    finally:
        del store._write, gateway.add_communication
    assert sent_texts(bot, case.case_id) == ["sent while the disk filled"]
    assert bot.sandbox.calls["AddCommunicationToCase"] == 1
    assert not full.is_set(), "confirmed while the store still refused every write"
    assert not bot.slack.calls("chat.postMessage", lambda c: "not* sent" in c.params.get("text", ""))


# 7771f58: tests/conftest.py's bytecode cache -------------------------------------------------------


def test_a_touched_but_unchanged_test_module_does_not_make_every_later_run_collect_the_suite_again(tmp_path):
    """pytest's rewritten pycs are checked by source hash: a touched module whose text is unchanged is
    read from its pyc and never written again, so a check by mtime says "stale" on every run after
    (a branch switched and back, a touch): each run spawns a whole-suite collection, 2 to 5 s, for nothing."""
    from _pytest.assertion.rewrite import _write_pyc_fp

    import tests.conftest as conftest

    tests = tmp_path / "tests"
    (tests / "__pycache__").mkdir(parents=True)
    source = tests / "test_one.py"
    source.write_text("def test_it():\n    assert True\n")
    tail = f".{__import__('sys').implementation.cache_tag}-pytest-{pytest.__version__}.pyc"
    code = compile(source.read_bytes(), str(source), "exec")
    with open(tests / "__pycache__" / (source.stem + tail), "wb") as fp:
        _write_pyc_fp(fp, importlib.util.source_hash(source.read_bytes()), code)
    assert conftest._stale_rewrites(tests) is False
    later = time.time() + 5
    os.utime(source, (later, later))  # touched: same text, newer mtime; pytest keeps its pyc as it is
    assert conftest._stale_rewrites(tests) is False, "a valid pyc is taken for stale forever"


def test_the_bot_bytecode_written_for_the_run_is_checked_against_its_source_not_its_mtime():
    """compileall's default pycs are trusted on (mtime in seconds, size): a same-size edit within the
    second of the last compile (or an mtime-keeping copy) runs the old code, in the tests' imports and
    in every `python -m bot` they start. Before 7771f58 no pyc was written (PYTHONDONTWRITEBYTECODE)."""
    cached = ROOT / "bot" / "__pycache__" / f"config.{__import__('sys').implementation.cache_tag}.pyc"
    assert cached.exists(), "conftest's compileall wrote nothing"
    flags = int.from_bytes(cached.read_bytes()[4:8], "little")
    assert flags & 0b11 == 0b11, "a timestamp pyc: a stale one is used whatever the source now says"

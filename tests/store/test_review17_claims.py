"""Review 17: the fixes of 35424c8 to SharedClaims (noted replies, forget_older, sorted batches, the
writer's start and close). Each test here fails on 35424c8."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.cases.helpers import open_case_at_aws, sent_texts
from tests.store.test_replay_claims_shared import FORM, signed_command


def _delay_claims(bot: Any, seconds: float) -> None:
    """The replica's claims writer is `seconds` behind (a batch before it, a pool connection to wait for)."""
    table = bot.services.store.table("requests")
    real = table.claim_many

    def behind(items: dict[str, Any], *, durable: bool = True) -> set[str]:
        time.sleep(seconds)
        return real(items, durable=durable)

    table.claim_many = behind  # type: ignore[method-assign]


def test_a_reply_replayed_to_another_replica_is_answered_once(bot_factory, pg_url: str) -> None:
    """Replica A notes the reply and sends it (noted=True: it no longer waits for the claim). Replica B
    gets the replay: its note finds the record (intake ""), so its job is gated by the claim, and its
    claim reaches the database first (A's writer is behind). B's job runs start_noted("") and tells the
    person "That reply was already handled." beside A's "Reply sent": a replica that had not seen the
    request answers after the ack, which README says a replay never gets."""
    first = bot_factory(env={"DATABASE_URL": pg_url})
    second = bot_factory(env={"DATABASE_URL": pg_url})
    case = open_case_at_aws(first)
    _delay_claims(first, 1.0)
    body, headers, response_url = signed_command(first, f"reply {case.display_id} please look again")

    assert first.requests.post(body, FORM, signing="unsigned", headers=headers).status == 200
    assert second.requests.post(body, FORM, signing="unsigned", headers=headers).status == 200
    first.wait_for_response(response_url=response_url, timeout=20)
    time.sleep(1.5)
    assert first.services.work.wait_idle(timeout=20) and second.services.work.wait_idle(timeout=20)
    time.sleep(0.5)

    assert sent_texts(first, case.case_id) == ["please look again"]
    answers = [answer.get("text") for answer in first.slack.responses(response_url)]
    assert len(answers) == 1, f"the person was answered {len(answers)} times: {answers}"


class _UnreadableTable:
    """The table cannot be read at start with an error that is not a StoreError (a bug, a MemoryError,
    a psycopg error that is not an OperationalError: a revoked privilege), then works."""

    name = "requests"

    def __init__(self) -> None:
        self.written: dict[str, Any] = {}

    def items(self) -> list[tuple[str, Any]]:
        raise RuntimeError("cannot read the claims")

    def claim_many(self, items: dict[str, Any], *, durable: bool = True) -> set[str]:
        fresh = {key for key in items if key not in self.written}
        self.written.update(items)
        return fresh


def test_a_table_that_cannot_be_read_at_start_does_not_stop_the_claims_writer() -> None:
    """_remember_the_table catches only StoreError, where _write catches every exception ("the writer
    goes on"). Anything else ends the writer thread: every claim after it waits CONFIRM_TIMEOUT_SECONDS
    and fails, so every command's and button's work says the state is unavailable until a restart."""
    from bot.store.claims import SharedClaims

    hooked: list[BaseException] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: hooked.append(args.exc_value)  # type: ignore[assignment,return-value]
    try:
        claims = SharedClaims(_UnreadableTable(), confirm_timeout=2.0)  # type: ignore[arg-type]
        pending = claims.admit("v0=after-start", 1)
        assert pending is not None
        try:
            won = pending.won()
        except Exception as error:  # noqa: BLE001
            won = error  # type: ignore[assignment]
        claims.close()
    finally:
        threading.excepthook = previous

    assert won is True, f"the claim was never written ({won!r}); the writer died of {hooked!r}"


def test_the_shared_claims_test_stops_the_writer_it_starts(pg_url: str) -> None:
    """tests/store/test_claims.py::test_a_shared_store_claims_in_the_database[postgres] makes a
    SharedClaims (through fast_claims) and never closes it: its writer thread, holding the closed
    store, outlives the test (one per run)."""
    from bot.store.postgres import PostgresStore
    from tests.store.test_claims import test_a_shared_store_claims_in_the_database

    store = PostgresStore.connect(pg_url)
    before = {thread.ident for thread in threading.enumerate()}
    try:
        test_a_shared_store_claims_in_the_database(store)
    finally:
        store.close()
    # Closed threads end within moments; a leaked one never does (polled: a loaded machine is slow to end them).
    deadline = time.monotonic() + 5
    while leaked := [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()]:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert leaked == [], f"threads left running by the test: {leaked}"

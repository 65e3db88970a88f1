"""The contract's guarantees across replicas: two real bots (`python -m bot serve`) on one PostgreSQL
database, Slack hitting either. A thread reply reaches AWS once and is confirmed once whichever replica
gets it (and its retries); a replica killed while sending leaves its reply to the other, which finishes
it once; a Create form redelivered to the other replica opens one case."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.bootstrap import sandbox_gateway
from tests.cases.helpers import link_case, open_case_at_aws
from tests.cases.test_modal import open_modal, values
from tests.support.fake_slack import FakeSlack
from tests.support.replicas import Replica, start_replica, wait_for
from tests.support.slack_requests import SlackRequests, new_event_id

SECRET = "test-secret"
# Short, so that the takeover of a dead replica's work takes seconds, not the default minute.
JOURNAL_LEASE_SECONDS = 3


@pytest.fixture
def two_replicas(pg_url: str, fake_slack: FakeSlack, sandbox, tmp_path: Path) -> Iterator[Callable[[], list[Replica]]]:
    started: list[Replica] = []

    def start() -> list[Replica]:
        env = {"BOT_JOURNAL_LEASE_SECONDS": str(JOURNAL_LEASE_SECONDS)}
        started.extend(start_replica(pg_url, fake_slack.api_url, sandbox.url, tmp_path, env=env) for _ in range(2))
        wait_for(lambda: all(r.health() for r in started), 60, "both replicas healthy")
        return list(started)

    try:
        yield start
    finally:
        for replica in started:
            replica.stop()


def requests(replica: Replica) -> SlackRequests:
    return SlackRequests(replica.url, SECRET)


def journal_idle(replicas: list[Replica]) -> bool:
    """No replica holds a journal record (alive ones only): nothing more is on its way."""
    for replica in replicas:
        if replica.process.poll() is not None:
            continue
        body = replica.health()
        if body is None or body["workers"]["journal"]["held"]:
            return False
    return True


def checkmarks(fake_slack: FakeSlack, ts: str) -> list:
    return fake_slack.calls("reactions.add", lambda c: c.params["timestamp"] == ts)


def linked_thread(bot_factory: Callable, pg_url: str):
    """A case at AWS with its card in C1, set up by a bot on the database that is stopped again."""
    setup = bot_factory(env={"DATABASE_URL": pg_url})
    setup.slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    case = open_case_at_aws(setup)
    card = link_case(setup, case)
    setup.stop()
    return case, card


def test_a_thread_reply_delivered_to_both_replicas_reaches_aws_once(
    bot_factory: Callable, pg_url: str, fake_slack: FakeSlack, sandbox, two_replicas
) -> None:
    case, card = linked_thread(bot_factory, pg_url)
    a, b = two_replicas()
    gateway = sandbox_gateway(sandbox.url)

    event = fake_slack.add_message("C1", "disk is back", user="U1", thread_ts=card["ts"])
    event_id = new_event_id()
    # Slack sends the event to one replica and, not hearing back in time, retries it on another.
    assert requests(a).event_callback(event, event_id=event_id).status == 200
    assert requests(b).event_callback(event, event_id=event_id).status == 200
    assert requests(b).event_callback(event, event_id=event_id, retry_num=1).status == 200
    assert requests(a).event_callback(event, event_id=event_id, retry_num=2).status == 200

    wait_for(lambda: checkmarks(fake_slack, event["ts"]), 30, "the ✅")
    wait_for(lambda: journal_idle([a, b]), 30, "both replicas done")
    sent = [c.body for c in gateway.communications(case.case_id) if "disk is back" in c.body]
    assert len(sent) == 1, sent
    assert sandbox.calls["AddCommunicationToCase"] == 1
    assert len(checkmarks(fake_slack, event["ts"])) == 1


@pytest.mark.slow(seconds=8)
def test_a_replica_killed_while_sending_a_reply_leaves_it_to_the_other_which_sends_it_once(
    bot_factory: Callable, pg_url: str, fake_slack: FakeSlack, sandbox, two_replicas
) -> None:
    case, card = linked_thread(bot_factory, pg_url)
    a, b = two_replicas()
    gateway = sandbox_gateway(sandbox.url)

    # AWS answers AddCommunicationToCase slowly: replica A dies while its call is on the way.
    sandbox.set_latency(2)
    event = fake_slack.add_message("C1", "rebooted it", user="U1", thread_ts=card["ts"])
    assert requests(a).event_callback(event).status == 200
    wait_for(lambda: sandbox.calls["AddCommunicationToCase"] >= 1, 30, "A's AddCommunicationToCase")
    a.kill()
    sandbox.set_latency(0)

    # B's journal keeper takes the record over once A's lease on it runs out, and finishes it.
    wait_for(lambda: any(c.status == 200 for c in checkmarks(fake_slack, event["ts"])), 60, "the ✅ from B")
    wait_for(lambda: journal_idle([b]), 30, "B done")
    sent = [c.body for c in gateway.communications(case.case_id) if "rebooted it" in c.body]
    assert len(sent) == 1, sent
    reactions = fake_slack.message("C1", event["ts"]).get("reactions") or []
    assert [(r["name"], r["count"]) for r in reactions] == [("white_check_mark", 1)]


def test_a_create_form_redelivered_to_the_other_replica_opens_one_case(
    bot_factory: Callable, pg_url: str, fake_slack: FakeSlack, sandbox, two_replicas
) -> None:
    setup = bot_factory(env={"DATABASE_URL": pg_url})
    view = open_modal(setup)
    setup.stop()
    a, b = two_replicas()

    form = values(subject="Opened once across replicas")
    assert requests(a).view_submission(view, values=form).status == 200
    assert requests(b).view_submission(view, values=form).status == 200

    fake_slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None, timeout=30)
    wait_for(lambda: journal_idle([a, b]), 30, "both replicas done")
    cases = [c.subject for c in sandbox_gateway(sandbox.url).list_cases()]
    assert cases == ["Opened once across replicas"]
    assert sandbox.calls["CreateCase"] == 1
    cards = fake_slack.calls("chat.postMessage", lambda c: c.params.get("blocks") is not None)
    assert len(cards) == 1


def digest_posts(fake_slack: FakeSlack, channel: str = "C1") -> list:
    return fake_slack.calls(
        "chat.postMessage",
        lambda c: (
            c.params.get("channel") == channel
            and not c.params.get("thread_ts")
            and any(b.get("block_id") == "digest_header" for b in c.params.get("blocks") or [])
            and c.status == 200
        ),
    )


@pytest.mark.slow(seconds=120)
@pytest.mark.timeout(300)  # waits on wall-clock minutes: up to 90 + 60 + 90 s when the machine is slow
def test_each_schedule_slot_is_posted_once_by_two_replicas_and_across_a_takeover(
    bot_factory: Callable, pg_url: str, fake_slack: FakeSlack, sandbox, two_replicas
) -> None:
    setup = bot_factory(env={"DATABASE_URL": pg_url})
    setup.command("digest schedule * * * * *", user="UADMIN")  # every minute, by the wall clock
    setup.wait_for_response()
    setup.stop()
    replicas = two_replicas()

    [first] = wait_for(lambda: digest_posts(fake_slack), 90, "the first slot's digest")
    [holder] = [r for r in replicas if r.lease().get("held_here")]
    [standby] = [r for r in replicas if r is not holder]
    # The moment of takeover: the holder dies right after posting a slot; the new holder's first
    # scheduler tick finds that slot due-and-claimed, and must leave it.
    holder.kill()
    wait_for(lambda: standby.lease().get("held_here"), 60, "the takeover")
    posts = wait_for(lambda: digest_posts(fake_slack)[1:] and digest_posts(fake_slack), 90, "the next slot's digest")
    wait_for(lambda: standby.health()["workers"]["scheduler"].get("last_tick"), 10, "a tick of the new holder")

    minutes = [int(float(p.response["ts"]) // 60) for p in posts]
    assert posts[0] is first or posts[0].response["ts"] == first.response["ts"]
    # One post per slot: the slot the dead holder posted is not posted again, the next one is, once.
    assert minutes == [minutes[0], minutes[0] + 1], [p.response["ts"] for p in posts]

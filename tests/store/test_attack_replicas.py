"""Attacks across replicas (helper "attack"): each test fails on the code it was written against."""

from __future__ import annotations

from tests.cases.helpers import link_case, open_case_at_aws, sent_texts


def test_two_replicas_keep_one_threads_replies_in_the_order_people_wrote_them(bot_factory, pg_url):
    # The order key (bot/work.py OrderedWork) is a process-local queue: message A reaches replica 1 and
    # waits for its file; message B, written after it, reaches replica 2 and goes to AWS first.
    first = bot_factory(env={"DATABASE_URL": pg_url})
    second = bot_factory(env={"DATABASE_URL": pg_url})
    first.slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    case = open_case_at_aws(first)
    card = link_case(first, case)
    log = first.slack.add_file("app.log", b"boom", "text/plain")
    first.slack.set_latency(1.5, "file_download")  # the first reply is slow to leave
    first.user_message("C1", "first, with a file", thread_ts=card["ts"], files=[log], subtype="file_share")
    second.user_message("C1", "second", thread_ts=card["ts"])
    assert first.services.work.wait_idle(timeout=20) and second.services.work.wait_idle(timeout=20)
    assert sent_texts(first, case.case_id) == ["first, with a file", "second"]

"""The store's contract, run against both backends: what bot code may rely on, whichever one it runs on.

Cross-process atomicity, which only PostgreSQL offers (a sqlite file belongs to one process), is proven
in test_postgres.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from bot.store.backend import Store
from bot.store.tables import TABLES

AWKWARD_VALUES: list[Any] = [
    {"case_id": "case-1", "subject": "Disk <full> & été 🔥", "count": 3, "tags": ["a", None]},
    {"nested": {"deep": {"deeper": [1, 2.5, -3, True, False, None, "", {}]}}},
    ["a list", 0, 1e-9, 2**53, -(2**40)],
    'plain text with "quotes", \\backslashes\\ and \n newlines \t tabs \u2028',
    12345,
    3.25,
    True,
    None,
    "",
    {"": "empty key", "ключ": "значение", "emoji 🎉": ["✅"]},
]


def run_together(count: int, target: Callable[[int], None]) -> None:
    """`target(n)` on `count` threads released at once."""
    start = threading.Barrier(count)

    def contender(n: int) -> None:
        start.wait()
        target(n)

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)


def test_get_put_contains_len_delete(store: Store) -> None:
    cases = store.table("cases")

    assert cases.get("case-1") is None
    assert cases.get("case-1", "absent") == "absent"
    assert "case-1" not in cases
    assert len(cases) == 0

    cases.put("case-1", {"status": "opened"})
    cases.put("case-2", {"status": "resolved"})
    cases.put("case-1", {"status": "reopened"})

    assert cases.get("case-1") == {"status": "reopened"}
    assert "case-1" in cases
    assert len(cases) == 2
    cases.delete("case-1")
    cases.delete("never-there")
    assert "case-1" not in cases
    assert cases.get("case-1", "gone") == "gone"
    assert len(cases) == 1


@pytest.mark.parametrize("value", AWKWARD_VALUES, ids=range(len(AWKWARD_VALUES)))
def test_json_values_round_trip(store: Store, value: Any) -> None:
    store.table("meta").put("k", value)
    store.table("meta").put_many({"many": value})
    store.table("meta").claim("claimed", value)

    assert store.table("meta").get("k") == value
    assert store.table("meta").get("many") == value
    assert store.table("meta").get("claimed") == value


def test_keys_may_hold_any_text(store: Store) -> None:
    links = store.table("links")
    keys = ["case-1|C1", "C1|1712345678.000100", "with space", "ünïcødé", "'; DROP TABLE kv; --", "%s %(x)s"]

    for n, key in enumerate(keys):
        links.put(key, n)

    assert {key: links.get(key) for key in keys} == {key: n for n, key in enumerate(keys)}


def test_json_is_what_comes_back_tuples_become_lists(store: Store) -> None:
    store.table("meta").put("t", {"pair": (1, "two")})

    assert store.table("meta").get("t") == {"pair": [1, "two"]}


def test_a_value_that_is_not_json_is_refused_and_nothing_is_written(store: Store) -> None:
    meta = store.table("meta")
    meta.put("kept", 1)

    with pytest.raises(TypeError):
        meta.put("bad", {"when": object()})
    with pytest.raises(TypeError):
        meta.claim("bad", object())
    with pytest.raises(TypeError):
        meta.update("kept", lambda old: object())

    assert "bad" not in meta
    assert meta.get("kept") == 1


@pytest.mark.parametrize("durable", [True, False])
def test_claim_is_won_by_the_first_caller_only(store: Store, durable: bool) -> None:
    events = store.table("events")

    assert events.claim("Ev1", {"by": "first"}, durable=durable) is True
    assert events.claim("Ev1", {"by": "second"}, durable=durable) is False
    assert events.get("Ev1") == {"by": "first"}
    assert events.claim("Ev2") is True
    assert events.get("Ev2") is True


def test_claim_loses_to_a_put(store: Store) -> None:
    store.table("events").put("Ev1", "put")

    assert store.table("events").claim("Ev1", "claim") is False
    assert store.table("events").get("Ev1") == "put"


@pytest.mark.parametrize("durable", [True, False])
def test_claim_under_concurrency_from_threads_has_exactly_one_winner(store: Store, durable: bool) -> None:
    events = store.table("events")
    wins: list[tuple[int, bool]] = []

    run_together(16, lambda n: wins.append((n, events.claim("Ev-race", n, durable=durable))))

    winners = [n for n, won in wins if won]
    assert len(wins) == 16
    assert len(winners) == 1
    assert events.get("Ev-race") == winners[0]


@pytest.mark.parametrize("durable", [True, False])
def test_claim_many_writes_only_the_absent_keys_in_one_go(store: Store, durable: bool) -> None:
    requests = store.table("requests")
    requests.put("v0=seen", 1)

    won = requests.claim_many({"v0=seen": 2, "v0=new": 3, "v0=also-new": {"at": 4}}, durable=durable)

    assert won == {"v0=new", "v0=also-new"}
    assert requests.get("v0=seen") == 1
    assert requests.get("v0=new") == 3 and requests.get("v0=also-new") == {"at": 4}
    assert requests.claim_many({}, durable=durable) == set()


def test_claim_many_under_concurrency_from_threads_gives_each_key_one_winner(store: Store) -> None:
    requests = store.table("requests")
    wins: list[set[str]] = []

    run_together(8, lambda n: wins.append(requests.claim_many({"v0=shared": n, f"v0=own-{n}": n})))

    assert sum("v0=shared" in won for won in wins) == 1
    assert set().union(*wins) - {"v0=shared"} == {f"v0=own-{n}" for n in range(8)}
    assert len(requests) == 9


def test_update_reads_the_default_then_what_it_wrote(store: Store) -> None:
    sync = store.table("sync")
    seen: list[Any] = []

    def count(old: Any) -> int:
        seen.append(old)
        return (old or 0) + 1

    assert sync.update("case-1", count) == 1
    assert sync.update("case-1", count) == 2
    assert sync.update("case-2", lambda old: old + ["x"], default=[]) == ["x"]
    assert seen == [None, 1]
    assert sync.get("case-1") == 2
    assert sync.get("case-2") == ["x"]


def test_update_that_raises_writes_nothing(store: Store) -> None:
    sync = store.table("sync")
    sync.put("present", {"n": 1})

    def fail(old: Any) -> Any:
        raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        sync.update("present", fail)
    with pytest.raises(RuntimeError):
        sync.update("absent", fail, default={"n": 0})

    assert sync.get("present") == {"n": 1}
    assert "absent" not in sync
    assert len(sync) == 1


def test_update_that_returns_unchanged_writes_nothing_and_leaves_an_absent_key_absent(store: Store) -> None:
    from bot.store.backend import UNCHANGED

    sync = store.table("sync")
    sync.put("present", {"n": 1})

    assert sync.update("present", lambda old: UNCHANGED) == {"n": 1}
    assert sync.update("absent", lambda old: UNCHANGED) is None  # no null row for it (review35)
    assert sync.get("present") == {"n": 1}
    assert "absent" not in sync
    assert len(sync) == 1


def test_update_under_concurrency_from_threads_loses_no_increment(store: Store) -> None:
    sync = store.table("sync")

    def increment(n: int) -> None:
        for _ in range(25):
            sync.update("counter", lambda old: (old or 0) + 1)

    run_together(8, increment)

    assert sync.get("counter") == 200


def test_put_many_writes_all(store: Store) -> None:
    links = store.table("links")
    links.put("a", "old")

    links.put_many({"a": 1, "b": {"x": [2]}, "c": None})
    links.put_many({})

    assert dict(links.items()) == {"a": 1, "b": {"x": [2]}, "c": None}


def test_put_many_is_all_or_none(store: Store) -> None:
    links = store.table("links")
    links.put("a", "old")

    with pytest.raises(TypeError):
        links.put_many({"a": "new", "b": 2, "c": object(), "d": 4})

    assert dict(links.items()) == {"a": "old"}


def test_items_with_lists_only_the_objects_whose_field_has_that_text_in_listing_order(store: Store) -> None:
    journal = store.table("journal")
    journal.put("a", {"state": "pending", "n": 1})
    journal.put("b", {"state": "done", "data": {"state": "pending"}})  # nested: not the record's own
    journal.put("c", {"state": "PENDING"})
    journal.put("d", {"note": '"state":"pending"'})  # the text inside a string
    journal.put("e", ["state", "pending"])
    journal.put("f", "pending")
    journal.put("g", {"state": "pending", "ключ": "значение 🎉"})
    journal.put("h", {"state": 5})
    journal.put("i", {"state": True})
    journal.put("a", {"state": "pending", "n": 2})  # written last now
    store.table("links").put("other table", {"state": "pending"})

    assert list(journal.items_with("state", "pending")) == [
        ("g", {"state": "pending", "ключ": "значение 🎉"}),
        ("a", {"state": "pending", "n": 2}),
    ]
    assert list(journal.items_with("state", "failed")) == []
    assert list(journal.items_with("state", "5")) == [] and list(journal.items_with("state", "true")) == []


def test_delete_stamped_before_deletes_older_stamps_and_values_that_are_not_stamps(store: Store) -> None:
    requests = store.table("requests")
    requests.put_many(
        {"old": 1000, "older": 999.5, "edge": 1500, "new": 2000, "fraction": 1499.9, "text": "1", "dict": {"a": 1}}
    )
    store.table("links").put("other table", 1)

    deleted = requests.delete_stamped_before(1500)

    assert sorted(deleted) == ["dict", "fraction", "old", "older", "text"]
    assert dict(requests.items()) == {"edge": 1500, "new": 2000}
    assert store.table("links").get("other table") == 1
    assert requests.delete_stamped_before(1500) == []


def test_keys_items_values_list_records_in_the_order_they_were_last_written(store: Store) -> None:
    digests = store.table("digests")
    digests.put("C1", 1)
    digests.put_many({"C2": 2, "C3": 3})
    digests.claim("C4", 4)
    digests.put("C1", 10)
    digests.update("C2", lambda old: old * 10)

    assert list(digests.keys()) == ["C3", "C4", "C1", "C2"]
    assert list(digests.items()) == [("C3", 3), ("C4", 4), ("C1", 10), ("C2", 20)]
    assert list(digests.values()) == [3, 4, 10, 20]


def test_listing_is_a_snapshot_that_tolerates_writes_while_iterating(store: Store) -> None:
    outbound = store.table("outbound")
    outbound.put_many({f"k{n}": n for n in range(5)})

    listed = outbound.keys()
    for key in listed:
        outbound.delete(key)

    assert len(outbound) == 0


def test_tables_are_separate_and_unknown_tables_are_refused(store: Store) -> None:
    store.table("cases").put("k", 1)
    store.table("links").put("k", 2)

    assert store.table("cases").get("k") == 1
    assert store.table("links").get("k") == 2
    assert len(store.table("threads")) == 0
    with pytest.raises(KeyError):
        store.table("not-a-table")


def test_every_table_the_bot_knows_opens(store: Store) -> None:
    for name in TABLES:
        assert store.table(name).name == name
        assert len(store.table(name)) == 0


def test_everything_survives_closing_and_reopening(store: Store, reopen: Callable[[], Store]) -> None:
    store.table("cases").put("case-1", {"status": "opened"})
    store.table("links").put_many({"case-1|C1": {"ts": "1.1"}, "case-1|C2": {"ts": "2.2"}})
    store.table("events").claim("Ev1")
    store.table("sync").update("n", lambda old: 41 if old is None else old)
    store.close()

    again = reopen()

    assert again.table("cases").get("case-1") == {"status": "opened"}
    assert dict(again.table("links").items()) == {"case-1|C1": {"ts": "1.1"}, "case-1|C2": {"ts": "2.2"}}
    assert again.table("events").claim("Ev1") is False
    assert again.table("sync").update("n", lambda old: old + 1) == 42
    assert again.healthy()


def test_a_healthy_store_says_so(store: Store) -> None:
    assert store.healthy() is True

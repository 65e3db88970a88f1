"""The kept pages of `search` read the store sparingly, on both backends: keeping a search reads no
other search's record (pruning by age reads keys, at most once a minute per process), and Next reads
only its token's record."""

from __future__ import annotations

from typing import Any

from bot.cases.search import SearchResult
from bot.cases.search_pages import PRUNE_EVERY_SECONDS, TTL_SECONDS, SearchPages
from bot.domain import Case


class CountingTable:
    """The real table, with the records it hands out counted."""

    def __init__(self, table: Any, reads: dict[str, int]) -> None:
        self._table = table
        self.reads = reads

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._table, name)
        if name in ("get", "items", "values", "keys"):
            self.reads[name] = self.reads.get(name, 0) + 1
        return attribute


class Clocked:
    """The real store, its clock moved by the test and its `searches` table counted."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.offset = 0.0
        self.reads: dict[str, int] = {}

    def now(self) -> float:
        return self._store.now() + self.offset

    def table(self, name: str) -> Any:
        return CountingTable(self._store.table(name), self.reads)


def case(n: int) -> Case:
    return Case(f"case-{n}", str(n), f"Queue stuck {n}", "opened", "svc", "cat", "low", "u", "2026-01-01T00:00:00Z")


def result(count: int = 7) -> SearchResult:
    return SearchResult(cases=[case(n) for n in range(count)])


def test_keeping_a_search_reads_no_other_record_and_prunes_by_age_only_when_due(store):
    clocked = Clocked(store)
    pages = SearchPages(clocked)  # type: ignore[arg-type]
    old = [pages.keep(result(), text="queue", user="U1", channel="C1").token for _ in range(20)]
    # A search kept by the previous release: a token without its time.
    store.table("searches").put("oldstyle", {"user": "U1", "channel": "C1", "at": store.now(), "cases": []})
    clocked.reads.clear()
    pages.keep(result(), text="queue", user="U1", channel="C1")
    assert clocked.reads.get("items", 0) == 0 and clocked.reads.get("values", 0) == 0
    assert clocked.reads.get("get", 0) == 0

    clocked.offset = TTL_SECONDS + PRUNE_EVERY_SECONDS + 1  # every search so far has expired
    fresh = pages.keep(result(), text="queue", user="U1", channel="C1").token
    table = store.table("searches")
    assert not any(token in table for token in [*old, "oldstyle"])
    assert fresh in table
    # Only the previous release's record was read to learn its age.
    assert clocked.reads.get("items", 0) == 0 and clocked.reads.get("get", 0) == 1

    clocked.reads.clear()
    pages.keep(result(), text="queue", user="U1", channel="C1")
    assert clocked.reads.get("keys", 0) == 0  # pruned a moment ago: not due again


def test_next_reads_only_its_tokens_record(store):
    clocked = Clocked(store)
    pages = SearchPages(clocked)  # type: ignore[arg-type]
    tokens = [pages.keep(result(), text="queue", user="U1", channel="C1").token for _ in range(5)]
    clocked.reads.clear()
    kept = pages.load(tokens[2], user="U1", channel="C1", visible=lambda c: True)
    assert len(kept.cases) == 7
    assert clocked.reads == {"get": 1}

"""Review 38 of 79d04d9: the provisional recheck is `-time.time()`, and the settle matches it with float
equality after a JSON round trip (SQLite: JSON text; PostgreSQL: jsonb, i.e. numeric). Any drift would
leave the case due every cycle. Checked through both backends' put/get/update/items and SyncStates.change."""

from __future__ import annotations

import random
import struct
import time
from dataclasses import asdict

import pytest

from bot.store.postgres import PostgresStore
from bot.store.tables import Store as SqliteStore
from bot.sync.state import SyncState, SyncStates


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        opened = SqliteStore(str(tmp_path / "state" / "bot.sqlite"))
    else:
        opened = PostgresStore.connect(request.getfixturevalue("pg_url"))
    try:
        yield opened
    finally:
        opened.close()


def _values() -> list[float]:
    rng = random.Random(38)
    now = time.time()
    values = [-time.time() for _ in range(200)]
    values += [-(now + rng.uniform(-1e6, 1e8)) for _ in range(300)]
    # every low-order bit pattern of a double near now: 17 significant digits are needed for these
    base = struct.unpack("<q", struct.pack("<d", now))[0]
    values += [-struct.unpack("<d", struct.pack("<q", base + k))[0] for k in range(-64, 64)]
    values += [-1.0, -0.1, -1e-7, -(2.0**31), -1.7976931348623157e308 / 1e300]
    return values


def test_a_provisional_value_reads_back_bit_for_bit(store):
    table = store.table("sync")
    values = _values()
    table.put_many({f"k{i}": {"next_check_at": v} for i, v in enumerate(values)})
    for i, v in enumerate(values):
        assert table.get(f"k{i}")["next_check_at"] == v, (i, v)
    got = dict(table.items())
    assert all(got[f"k{i}"]["next_check_at"] == v for i, v in enumerate(values))
    # through update (SELECT ... FOR UPDATE on PostgreSQL), written back unchanged, read again
    for i, v in enumerate(values[:150]):
        seen = []
        table.update(f"k{i}", lambda old, seen=seen: seen.append(old["next_check_at"]) or old)
        assert seen == [v]
        assert table.get(f"k{i}")["next_check_at"] == v


def test_the_settle_matches_its_own_provisional_value(store, monkeypatch):
    """SyncStates.save with replicas off (sqlite) or on (postgres): the settle writes the recheck."""
    case = "case-r38-roundtrip"
    store.table("sync").put(case, asdict(SyncState(case_id=case, status="resolved")))
    states = SyncStates(store)
    for _ in range(20):
        with states.holding(case) as held:
            assert held
            state = states.get(case)
            recheck = time.time() + 1800
            state.next_check_at = recheck
            states.save(state, woken_since_read=lambda: False)
        assert store.table("sync").get(case)["next_check_at"] == recheck

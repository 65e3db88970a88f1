"""Review 17: what 35424c8 fixed and no test pinned. These pass on 35424c8; each fails on the mutation
named in its docstring (every other claims test passes on those mutations)."""

from __future__ import annotations

import time
from typing import Any

from bot.store.backend import StoreError
from bot.store.claims import SharedClaims
from bot.web import REPLAY_WINDOW_SECONDS, ReplayGuard


class _Table:
    name = "requests"

    def __init__(self, rows: dict[str, Any] | None = None, *, down: bool = False) -> None:
        self.rows = dict(rows or {})
        self.down = down

    def items(self) -> list[tuple[str, Any]]:
        if self.down:
            raise StoreError("connection refused")
        return list(self.rows.items())

    def delete(self, key: str) -> None:
        self.rows.pop(key, None)

    def delete_stamped_before(self, horizon: float) -> list[str]:
        if self.down:
            raise StoreError("connection refused")
        old = [key for key, stamp in self.rows.items() if not isinstance(stamp, int | float) or stamp < horizon]
        for key in old:
            del self.rows[key]
        return old

    def claim_many(self, items: dict[str, Any], *, durable: bool = True) -> set[str]:
        fresh = {key for key in items if key not in self.rows}
        self.rows.update({key: items[key] for key in fresh})
        return fresh


def test_a_prune_keeps_in_memory_the_claims_still_inside_the_signature_window() -> None:
    """Mutation: forget_older clears every claim (`self._claimed.clear()`): a replay to this replica after
    a prune is then admitted, acked and answered from the ack (help, a menu's options) again."""
    table = _Table()
    claims = SharedClaims(table)  # type: ignore[arg-type]
    guard = ReplayGuard(table, prune=lambda job: None, claims=claims)  # type: ignore[arg-type]
    try:
        now = time.time()
        pending = guard.admit("v0=recent", int(now - 60))
        assert pending is not None and pending.won()
        table.rows.clear()  # another replica pruned (or the row went): memory still decides here

        guard.prune(now)

        assert guard.admit("v0=recent", int(now - 60)) is None, "a replay inside the window admitted again"
        assert guard.admit("v0=old", int(now - REPLAY_WINDOW_SECONDS - 1)) is not None
    finally:
        claims.close()


def test_the_claims_already_in_the_table_at_start_are_refused_from_memory() -> None:
    """Mutation: _write_all no longer calls _remember_the_table."""
    table = _Table({"v0=served-before": int(time.time())})
    claims = SharedClaims(table)  # type: ignore[arg-type]
    try:
        claims.flush()
        deadline = time.monotonic() + 5
        while "v0=served-before" not in claims._claimed and time.monotonic() < deadline:
            time.sleep(0.01)
        assert claims.admit("v0=served-before", 1) is None
    finally:
        claims.close()


def test_a_table_away_at_start_neither_stops_the_start_nor_the_claims() -> None:
    """Mutation: SharedClaims.__init__ reads the table itself (f3ab4ea): the StoreError stops the start."""
    table = _Table(down=True)  # its read fails; its claims go through (the database came back)
    claims = SharedClaims(table)  # type: ignore[arg-type]
    try:
        pending = claims.admit("v0=a", 1)
        assert pending is not None and pending.won() is True
    finally:
        claims.close()

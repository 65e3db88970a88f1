"""What every store backend offers, and the one place that picks a backend from the settings.

The bot's code talks to `Store` and `Table` as described here. Two backends satisfy them:
`bot.store.tables` (sqlitedict, one process per file, the embedded default) and `bot.store.postgres`
(PostgreSQL, shared by any number of processes). Every operation below is a promise both keep: in
sqlitedict under the one process's lock, in PostgreSQL with a unique insert or a row lock, so a
caller never needs a lock of its own around check-then-write.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from bot.config import Settings, is_postgres_url
from bot.store.errors import StoreError
from bot.store.sentinels import UNCHANGED

logger = logging.getLogger(__name__)


# StoreError lives in bot.store.errors (every backend raises it); importers here keep working.
__all__ = ["UNCHANGED", "Store", "StoreError", "Table", "open_location", "open_store"]


class Table(Protocol):
    """A dict of JSON values that survives the process; every write is durable when it returns."""

    name: str

    def get(self, key: str, default: Any = None) -> Any: ...

    def __contains__(self, key: str) -> bool: ...

    def __len__(self) -> int: ...

    def put(self, key: str, value: Any) -> None: ...

    def put_many(self, items: dict[str, Any]) -> None:
        """Write several records in one transaction: all or none."""
        ...

    def delete(self, key: str) -> None: ...

    def claim(self, key: str, value: Any = True, *, durable: bool = True) -> bool:
        """Insert `key` only if absent; True when this call wrote it (first caller wins, in any process).

        `durable=False` lets the commit return before the write is on disk, where the backend can
        (a crash of the database server may then forget the claim); atomicity is the same."""
        ...

    def claim_many(self, items: dict[str, Any], *, durable: bool = True) -> set[str]:
        """claim() of every key in one transaction (one commit, one round trip): the keys this call wrote."""
        ...

    def update(self, key: str, change: Callable[[Any], Any], default: Any = None) -> Any:
        """Atomic read-modify-write: `change(old)` (old = `default` when absent) runs once while no other
        writer of this key can interleave; returns the value written (`old` when `change` returns
        UNCHANGED: nothing is written, and an absent key stays absent). Keep `change` short and pure."""
        ...

    def delete_stamped_before(self, horizon: float) -> list[str]:
        """For a table of timestamps (the replay claims): delete, in one statement, every record whose
        value is not a number at or after `horizon`; returns their keys. No row travels to Python."""
        ...

    def keys(self) -> Iterator[str]: ...

    def items_with(self, field: str, text: str) -> Iterator[tuple[str, Any]]:
        """items() of the records that are objects whose own `field` is the string `text`: the
        database picks them, so the others never travel to Python (a sweep of the few pending
        records among a week of finished ones)."""
        ...

    def items(self) -> Iterator[tuple[str, Any]]: ...

    def values(self) -> Iterator[Any]: ...

    def close(self) -> None: ...


class Store(Protocol):
    """The tables of one bot (see `bot.store.tables.TABLES`), opened on first use, shared by all threads."""

    # True when no other process can use these tables while this one runs (SQLite's file lock), so a
    # claim this process remembers is atomic for every request that can reach the store.
    exclusive: bool

    def table(self, name: str) -> Table: ...

    def healthy(self) -> bool:
        """True when the store answers a read now."""
        ...

    def now(self) -> float:
        """Seconds since the epoch by the store's clock: the database's for PostgreSQL, so that every
        replica measures a lease's expiry by the same clock, whatever its own says."""
        ...

    def close(self) -> None: ...


def open_store(settings: Settings) -> Store:
    """PostgreSQL when `DATABASE_URL` is set, else the sqlitedict file at `BOT_DB_PATH`.

    An unreachable or refused database raises ConfigError (one line at start, exit 2).
    """
    if not settings.database_url and os.environ.get("DYNO"):
        # Heroku sets DYNO; a dyno's disk is wiped at every restart, and the state with it.
        logger.warning(
            "state is in the file %s on a Heroku dyno, whose disk is wiped at every restart:"
            " add Heroku Postgres (it sets DATABASE_URL)",
            settings.db_path,
        )
    return open_location(settings.database_url or settings.db_path)


def open_location(location: str) -> Store:
    """A store from a PostgreSQL URL or a sqlite file path (the console's `store copy` takes either)."""
    if is_postgres_url(location):
        # Imported here so a sqlite-only bot never loads psycopg.
        from bot.store.postgres import PostgresStore

        return PostgresStore.connect(location)
    from bot.store.tables import Store as SqliteStore

    # Held by this process alone (a lock next to the file) and checked before anything starts.
    return SqliteStore.open(location)

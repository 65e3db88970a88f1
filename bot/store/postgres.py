"""The PostgreSQL backend: the store's tables shared by any number of bot processes (`DATABASE_URL`).

One table holds every store table's records: `kv(table_name, key, value jsonb, updated_at, seq)`. The
bot's tables are many, small and keyed by strings, and their list grows with features; one table keeps
the schema fixed (a new store table needs no migration), lets one statement copy or prune any of them,
and the primary key (table_name, key) gives each store table its own unique index. `seq` records the
order of last writes, the order sqlitedict iterates in, so both backends list records alike.

Atomicity is the database's, never a Python lock's, so it holds across processes: `claim` is a unique
insert (ON CONFLICT DO NOTHING), `update` a transaction around `SELECT … FOR UPDATE`, `put_many` one
transaction. Connections come from a pool that checks each one before use and reconnects by itself
when the server comes back; until then operations raise StoreError and `healthy()` is False.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from bot.config import ConfigError
from bot.store.backend import UNCHANGED, StoreError
from bot.store.errors import StoreRefused
from bot.store.tables import TABLES

logger = logging.getLogger(__name__)

# Seconds an operation waits for a connection before it raises StoreError (the database is away).
OPERATION_TIMEOUT = 5.0
HEALTH_TIMEOUT = 2.0
# Seconds a statement waits for a lock someone else holds (a manual ALTER, a stuck session) before it
# fails as a lost database would: otherwise every thread that touches the table, and the request
# claims' writer, waits for as long as the lock lasts. Under claims.CONFIRM_TIMEOUT_SECONDS, so that
# a claim the lock refused is forgotten (and can be made again) before the work that waits for it
# gives up. A lock_timeout the database URL or the server's settings give is kept.
LOCK_TIMEOUT = 5.0
CONNECT_TIMEOUT = 5
# After this many seconds of failed attempts the pool stops its backoff and reconnects on the next
# request instead: a long outage is then followed by a prompt recovery, not a minutes-long backoff.
RECONNECT_TIMEOUT = 10.0
POOL_SIZE = 8
# update(): a key deleted between finding its row and locking it is inserted again, this many times at most
# (three were used up once, under a full test run's load, by eight threads inserting and deleting one key).
UPDATE_INSERT_TRIES = 10
# A connection idle longer than this is checked (one round trip) before use: a server restart closes
# idle connections, and one in use a moment ago almost surely still works.
CHECK_AFTER_IDLE_SECONDS = 1.0
# Key of the advisory lock that serializes migrations: replicas starting together migrate one by one.
MIGRATION_LOCK = 0x6177_7362_6F74  # "awsbot"

# Each entry is one schema version, applied once in order and recorded in schema_version. Append only:
# a released entry never changes, so every database reaches the same schema by the same steps.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE SEQUENCE kv_seq;
    CREATE TABLE kv (
        table_name text NOT NULL,
        key text NOT NULL,
        value jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        seq bigint NOT NULL DEFAULT nextval('kv_seq'),
        PRIMARY KEY (table_name, key)
    );
    """,
)

_UPSERT = """
    INSERT INTO kv (table_name, key, value) VALUES (%s, %s, %s::jsonb)
    ON CONFLICT (table_name, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now(), seq = EXCLUDED.seq
"""


def encode(value: Any) -> str:
    """JSON text as jsonb takes it; refuses (TypeError, ValueError) before anything is written."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False, ensure_ascii=False)
    if "\\u0000" in text:
        # jsonb cannot hold NUL (text in PostgreSQL never can); it carries no meaning in anything the bot
        # keeps, so it becomes U+FFFD rather than failing a write forever.
        text = json.dumps(_without_nul(value), separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return text


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(item) for item in value]
    return value


def migrate(conn: psycopg.Connection) -> int:
    """Bring the schema to the newest version; returns the version the database had before."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version"
            " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
        current = int(row[0]) if row else 0
        for version, ddl in enumerate(MIGRATIONS, start=1):
            if version > current:
                conn.execute(ddl)
                conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
                logger.info("store schema migrated to version %d", version)
    if current > len(MIGRATIONS):
        # A newer replica migrated first (rolling deploy); migrations only add, so this one still works.
        logger.warning("store schema is at version %d, newer than this bot's %d", current, len(MIGRATIONS))
    return current


def describe(url: str) -> str:
    """user@host:port/dbname of a URL, for messages: never the password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.Error:
        return "?"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"{user}{parts.get('host') or 'localhost'}{port}/{parts.get('dbname') or ''}"


def _unavailable(error: psycopg.Error) -> bool:
    """The database cannot serve now: a lost connection or pool (PoolTimeout and PoolClosed are
    OperationalErrors too), a lock or resource limit, or a transaction it ended (SQLSTATE class 25: an
    idle-in-transaction timeout; XX and 58: its own failures), which psycopg raises as InternalError."""
    state = error.sqlstate or ""
    return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError) or state[:2] in ("25", "58", "XX")


def _refused(error: psycopg.Error) -> bool:
    """The database answered with an error, so the statement (or its transaction) was rolled back, or
    no connection was had to send it. Not a lost or closed connection (SQLSTATE class 08, or none),
    nor a server shutting down (57P..): a commit may have gone through before those."""
    if isinstance(error, PoolTimeout | PoolClosed):
        return True
    state = error.sqlstate or ""
    return bool(state) and not state.startswith(("08", "57P"))


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _connection_options(url: str) -> dict[str, Any]:
    """Options every connection gets unless the URL sets them itself."""
    given = conninfo_to_dict(url)
    options: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT,
        "application_name": "aws-support-bot",
        # A server that vanishes without closing the socket is noticed in seconds, not hours.
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }
    return {key: value for key, value in options.items() if key not in given}


_CLAIM = "INSERT INTO kv (table_name, key, value) VALUES (%s, %s, %s::jsonb) ON CONFLICT (table_name, key) DO NOTHING"
# One statement, one round trip: set_config(..., true) holds for this statement's own transaction,
# and PostgreSQL reads synchronous_commit when that transaction commits.
_CLAIM_UNFLUSHED = (
    "WITH unflushed AS (SELECT set_config('synchronous_commit', 'off', true))"
    " INSERT INTO kv (table_name, key, value) SELECT %s, %s, %s::jsonb FROM unflushed"
    " ON CONFLICT (table_name, key) DO NOTHING"
)

_CLAIM_MANY = (
    "INSERT INTO kv (table_name, key, value)"
    " SELECT %s, claimed.key, claimed.value::jsonb FROM unnest(%s::text[], %s::text[]) AS claimed (key, value)"
    " ON CONFLICT (table_name, key) DO NOTHING RETURNING key"
)
_CLAIM_MANY_UNFLUSHED = (
    "WITH unflushed AS (SELECT set_config('synchronous_commit', 'off', true))"
    " INSERT INTO kv (table_name, key, value)"
    " SELECT %s, claimed.key, claimed.value::jsonb"
    " FROM unflushed, unnest(%s::text[], %s::text[]) AS claimed (key, value)"
    " ON CONFLICT (table_name, key) DO NOTHING RETURNING key"
)

# numeric, not float8: a number beyond a double's range must not fail every later prune.
_DELETE_STAMPED_BEFORE = (
    "DELETE FROM kv WHERE table_name = %s"
    " AND CASE WHEN jsonb_typeof(value) = 'number' THEN (value #>> '{}')::numeric < %s::numeric ELSE true END"
    " RETURNING key"
)


class PostgresTable:
    """One store table: the rows of `kv` with this table_name."""

    def __init__(self, store: PostgresStore, name: str) -> None:
        self.name = name
        self._store = store

    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._store.connection() as conn:
            return conn.execute(query, (self.name, *params)).fetchall()

    def get(self, key: str, default: Any = None) -> Any:
        rows = self._rows("SELECT value FROM kv WHERE table_name = %s AND key = %s", (key,))
        return rows[0][0] if rows else default

    def __contains__(self, key: str) -> bool:
        return bool(self._rows("SELECT 1 FROM kv WHERE table_name = %s AND key = %s", (key,)))

    def __len__(self) -> int:
        return int(self._rows("SELECT count(*) FROM kv WHERE table_name = %s")[0][0])

    def put(self, key: str, value: Any) -> None:
        data = encode(value)
        with self._store.connection() as conn:
            conn.execute(_UPSERT, (self.name, key, data))

    def put_many(self, items: dict[str, Any]) -> None:
        """Write several records in one transaction: all or none."""
        rows = [(self.name, key, encode(value)) for key, value in items.items()]
        if not rows:
            return
        with self._store.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(_UPSERT, rows)

    def delete(self, key: str) -> None:
        with self._store.connection() as conn:
            conn.execute("DELETE FROM kv WHERE table_name = %s AND key = %s", (self.name, key))

    def delete_stamped_before(self, horizon: float) -> list[str]:
        with self._store.connection() as conn:
            rows = conn.execute(_DELETE_STAMPED_BEFORE, (self.name, horizon)).fetchall()
        return [row[0] for row in rows]

    def claim(self, key: str, value: Any = True, *, durable: bool = True) -> bool:
        """Insert `key` only if absent; True when this call wrote it (first caller wins, in any process).

        `durable=False`: the commit does not wait for its WAL to reach the disk (synchronous_commit
        off for this one statement). Other sessions see the row, and the unique key decides between
        racing claims, exactly as before; only a crash of the PostgreSQL server itself within
        wal_writer_delay x 3 (0.6 s) may forget it, and then only if nothing durable was committed
        after it (a later durable commit flushes the WAL up to itself, this claim included)."""
        data = encode(value)
        with self._store.connection() as conn:
            cursor = conn.execute(_CLAIM if durable else _CLAIM_UNFLUSHED, (self.name, key, data))
            return cursor.rowcount == 1

    def claim_many(self, items: dict[str, Any], *, durable: bool = True) -> set[str]:
        if not items:
            return set()
        # In key order: rows are locked in the order they are inserted, and two replicas' batches holding
        # the same keys in opposite orders (a burst of replays sent to both) would deadlock.
        keys = sorted(items)
        values = [encode(items[key]) for key in keys]
        with self._store.connection() as conn:
            rows = conn.execute(_CLAIM_MANY if durable else _CLAIM_MANY_UNFLUSHED, (self.name, keys, values)).fetchall()
        return {row[0] for row in rows}

    def update(self, key: str, change: Callable[[Any], Any], default: Any = None) -> Any:
        """Atomic read-modify-write across processes: the row is locked from read to write."""
        lock = "SELECT value FROM kv WHERE table_name = %s AND key = %s FOR UPDATE"
        with self._store.connection() as conn, conn.transaction():
            row = conn.execute(lock, (self.name, key)).fetchone()
            inserted = False
            for _ in range(UPDATE_INSERT_TRIES):
                if row is not None:
                    break
                # No row, no lock to take: insert the default so that racing callers queue on one row.
                # Another's row found instead may be deleted before it is locked: then insert again.
                inserted = (
                    conn.execute(
                        "INSERT INTO kv (table_name, key, value) VALUES (%s, %s, %s::jsonb)"
                        " ON CONFLICT (table_name, key) DO NOTHING",
                        (self.name, key, encode(default)),
                    ).rowcount
                    == 1
                )
                row = conn.execute(lock, (self.name, key)).fetchone()
            if row is None:
                raise StoreRefused(f"{self.name} {key!r}: its row kept vanishing before it could be locked")
            old = row[0]
            value = change(old)
            if value is UNCHANGED:
                if inserted:  # the placeholder this call inserted: the key stays absent
                    conn.execute("DELETE FROM kv WHERE table_name = %s AND key = %s", (self.name, key))
                return old
            conn.execute(
                "UPDATE kv SET value = %s::jsonb, updated_at = now(), seq = nextval('kv_seq')"
                " WHERE table_name = %s AND key = %s",
                (encode(value), self.name, key),
            )
            return value

    def keys(self) -> Iterator[str]:
        return iter([row[0] for row in self._rows("SELECT key FROM kv WHERE table_name = %s ORDER BY seq")])

    def items(self) -> Iterator[tuple[str, Any]]:
        rows = self._rows("SELECT key, value FROM kv WHERE table_name = %s ORDER BY seq")
        return iter([(key, value) for key, value in rows])

    def items_with(self, field: str, text: str) -> Iterator[tuple[str, Any]]:
        if "\x00" in field or "\x00" in text:
            return iter([])  # encode() stored every NUL as U+FFFD: no record holds one
        # jsonb equality, not ->>'s text: a number 5 is not the text "5", as in items_with's contract.
        query = "SELECT key, value FROM kv WHERE table_name = %s AND value -> %s = to_jsonb(%s::text) ORDER BY seq"
        rows = self._rows(query, (field, text))
        return iter([(key, value) for key, value in rows])

    def values(self) -> Iterator[Any]:
        return iter([row[0] for row in self._rows("SELECT value FROM kv WHERE table_name = %s ORDER BY seq")])

    def close(self) -> None:
        """Nothing to close: the store owns the connections."""


class PostgresStore:
    """Every table in one PostgreSQL database; one instance per process, shared by all threads."""

    exclusive = False  # replicas share the database

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = POOL_SIZE,
        timeout: float = OPERATION_TIMEOUT,
        lock_timeout: float = LOCK_TIMEOUT,
    ) -> None:
        """Use `connect` at start: it checks the URL and migrates the schema first."""
        self.location = describe(url)
        self._lock_timeout_ms = str(round(lock_timeout * 1000))
        self._last_used: weakref.WeakKeyDictionary[psycopg.Connection, float] = weakref.WeakKeyDictionary()
        self._last_used_lock = threading.Lock()
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, **_connection_options(url)},
            open=False,
            configure=self._configure,
            # A connection broken by a server restart is found and replaced before anyone uses it.
            check=self._check_if_idle,
            timeout=timeout,
            reconnect_timeout=RECONNECT_TIMEOUT,
            name="store",
        )
        self._tables: dict[str, PostgresTable] = {}
        self._lock = threading.Lock()

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        pool_size: int = POOL_SIZE,
        timeout: float = OPERATION_TIMEOUT,
        lock_timeout: float = LOCK_TIMEOUT,
    ) -> PostgresStore:
        """Open the store, or raise ConfigError with one line that says what is wrong with the database."""
        where = describe(url)
        try:
            options = _connection_options(url)
        except psycopg.Error as exc:
            raise ConfigError("store_bad_url", error=_one_line(exc)) from exc
        try:
            with psycopg.connect(url, autocommit=True, **options) as conn:
                migrate(conn)
        except psycopg.OperationalError as exc:
            raise ConfigError("store_unreachable", where=where, error=_one_line(exc)) from exc
        except psycopg.Error as exc:
            raise ConfigError("store_schema_failed", where=where, error=_one_line(exc)) from exc
        store = cls(url, pool_size=pool_size, timeout=timeout, lock_timeout=lock_timeout)
        try:
            store._pool.open(wait=True, timeout=OPERATION_TIMEOUT)
        except psycopg.OperationalError as exc:
            store.close()
            raise ConfigError("store_unreachable", where=where, error=_one_line(exc)) from exc
        logger.info("state in PostgreSQL at %s", where)
        return store

    def _configure(self, conn: psycopg.Connection) -> None:
        # 'default' only when nobody set it: a 0 from the URL, PGOPTIONS or ALTER ROLE/DATABASE is kept.
        conn.execute(
            "SELECT set_config('lock_timeout', %s, false) FROM pg_settings"
            " WHERE name = 'lock_timeout' AND source = 'default'",
            (self._lock_timeout_ms,),
        )

    def _check_if_idle(self, conn: psycopg.Connection) -> None:
        with self._last_used_lock:
            last_used = self._last_used.get(conn, 0.0)
        if time.monotonic() - last_used > CHECK_AFTER_IDLE_SECONDS:
            try:
                ConnectionPool.check_connection(conn)
            except psycopg.Error:
                # A restart broke them all: sweep the others out now. Found one at a time, each after
                # a longer pause (the pool's backoff: 0, 1, 2, 4 s), 5 of them outlasted the caller's timeout.
                with suppress(psycopg.Error):  # closing meanwhile: this one's failure tells
                    self._pool.check()
                raise

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection]:
        """A pooled autocommit connection; a lost or unreachable database raises StoreError."""
        try:
            with self._pool.connection(timeout=timeout) as conn:
                try:
                    yield conn
                finally:
                    with self._last_used_lock:
                        self._last_used[conn] = time.monotonic()
        except psycopg.Error as exc:
            if not _unavailable(exc):
                raise  # the bot's own mistake (bad data, bad SQL): not to be retried as an outage
            failure = StoreRefused if _refused(exc) else StoreError
            raise failure(f"PostgreSQL at {self.location} is unavailable: {_one_line(exc)}") from exc

    def table(self, name: str) -> PostgresTable:
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}; add it to store.TABLES with what it holds")
        with self._lock:
            if name not in self._tables:
                self._tables[name] = PostgresTable(self, name)
            return self._tables[name]

    def healthy(self) -> bool:
        """True when the database answers a query within a couple of seconds."""
        try:
            with self.connection(timeout=HEALTH_TIMEOUT) as conn:
                conn.execute("SELECT 1")
        except (StoreError, psycopg.Error):
            return False
        return True

    def now(self) -> float:
        """Seconds since the epoch by the database's clock, the one every replica shares."""
        with self.connection() as conn:
            row = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
        return float(row[0]) if row else time.time()

    def close(self) -> None:
        self._pool.close(timeout=5)

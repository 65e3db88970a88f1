"""The one owner of the SQLite state file: one table per kind of record, values stored as JSON.

The file keeps sqlitedict's layout (one `key TEXT PRIMARY KEY, value BLOB` table per name, JSON text
values, rows in insertion order), so files written by earlier versions open unchanged. The bot no
longer goes through sqlitedict's writer thread, though: a commit that fails there (a full disk)
raises inside that thread and kills it, after which every read and write of the table waits forever;
and a failed statement's error is handed to whichever caller touches the table next, so a writer
could be told "saved" while a reader got its error. Here each call runs on one connection in the
caller's thread: it commits before returning, or raises StoreUnavailable to that caller, and a
connection that failed is replaced by a new one on the next call.

Whatever a caller has written survives a kill -9 on the next line (WAL, committed before return).
`Store.open` is how the bot opens its file: it holds an OS lock next to it for the process's
lifetime (one process per file, or every AWS reply is posted twice) and proves the file answers a
read and takes a write before anything starts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from bot.config import ConfigError
from bot.store.errors import StoreUnavailable
from bot.store.sentinels import UNCHANGED

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; the bot is deployed on Linux
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Every table the bot keeps, and what it holds (the modules named own the record shapes).
TABLES = {
    "cases": "case_id -> what the bot knows of a followed case (cases.py)",
    "links": "case_id|channel -> the card and thread a case is linked to in a channel (cases.py)",
    "threads": "channel|thread_ts -> case_id, to route thread replies (cases.py)",
    "unlinked": "channel|thread_ts -> the case a thread followed until unlinked, and why (cases/records.py)",
    "events": "legacy per-feature markers from before the journal; only pruned now (cases/records.py)",
    "journal": "idempotency key -> work noted before an ack: lease, progress, outcome (store/journal.py)",
    "outbound": "hash of case and body -> a communication sent from Slack (cases.py writes, the poller reads)",
    "sync": "per-case sync cursor and posted-communication keys (sync_state.py)",
    "watches": "channel -> watch settings for cases opened outside Slack (watch.py)",
    "schedules": "channel -> digest schedule (schedule.py)",
    "digests": "channel -> previous digest state; @-keys: refresh bookkeeping (digest.py, digest_refresh.py)",
    "meta": "bot-wide markers (health, versions)",
    "leases": (
        "lease name -> the replica holding it and its expiry by the store's clock (store/lease.py);"
        " sync:<case> while a replica syncs that case (sync/state.py)"
    ),
    "requests": "Slack signature of a served request -> its timestamp, to refuse replays; pruned after 10 min (web.py)",
    "channel_accounts": "channel -> the AWS account an admin made its default (accounts/directory.py)",
    "searches": "token -> a search's matching cases for its Next pages; pruned after 30 min (cases/search_pages.py)",
}

LOCK_SUFFIX = ".lock"
_STAMP_AT_OR_AFTER = "(substr(value, 1, 1) GLOB '[0-9-]' AND CAST(value AS REAL) >= ?)"


def _encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


class Table:
    """A JSON dict on disk. Reads are direct; writes commit before returning."""

    def __init__(self, store: Store, name: str) -> None:
        self.name = name
        self._store = store
        self._lock = store.lock  # held by update() around its read-modify-write
        quoted = '"' + name.replace('"', '""') + '"'
        self._sql = {
            "make": f"CREATE TABLE IF NOT EXISTS {quoted} (key TEXT PRIMARY KEY, value BLOB)",
            "get": f"SELECT value FROM {quoted} WHERE key = ?",
            "has": f"SELECT 1 FROM {quoted} WHERE key = ?",
            "len": f"SELECT COUNT(*) FROM {quoted}",
            "put": f"REPLACE INTO {quoted} (key, value) VALUES (?, ?)",
            "claim": f"INSERT OR IGNORE INTO {quoted} (key, value) VALUES (?, ?)",
            "delete": f"DELETE FROM {quoted} WHERE key = ?",
            # A JSON number's text starts with a digit or "-", and CAST reads it as the number (beyond
            # a double's range, as an infinity). SELECT then DELETE in one write transaction:
            # RETURNING needs SQLite 3.35.
            "stamped_before": f"SELECT key FROM {quoted} WHERE NOT {_STAMP_AT_OR_AFTER}",
            "delete_stamped_before": f"DELETE FROM {quoted} WHERE NOT {_STAMP_AT_OR_AFTER}",
            "keys": f"SELECT key FROM {quoted} ORDER BY rowid",
            "values": f"SELECT value FROM {quoted} ORDER BY rowid",
            "items": f"SELECT key, value FROM {quoted} ORDER BY rowid",
            # instr() on the stored text needs no JSON1 in the SQLite linked; items_with() checks each
            # row it lets through.
            "items_containing": (
                f"SELECT key, value FROM {quoted} WHERE instr(value, ?) > 0 AND instr(value, ?) > 0 ORDER BY rowid"
            ),
        }

    def get(self, key: str, default: Any = None) -> Any:
        row = self._store._read(lambda db: db.execute(self._sql["get"], (key,)).fetchone())
        return default if row is None else json.loads(row[0])

    def __contains__(self, key: str) -> bool:
        return self._store._read(lambda db: db.execute(self._sql["has"], (key,)).fetchone()) is not None

    def __len__(self) -> int:
        return self._store._read(lambda db: db.execute(self._sql["len"]).fetchone()[0])

    def put(self, key: str, value: Any) -> None:
        encoded = _encode(value)
        self._store._write(lambda db: db.execute(self._sql["put"], (key, encoded)))

    def put_many(self, items: dict[str, Any]) -> None:
        """Write several records in one transaction: all or none survive a crash."""
        if not items:
            return
        rows = [(key, _encode(value)) for key, value in items.items()]
        self._store._write(lambda db: db.executemany(self._sql["put"], rows))

    def delete(self, key: str) -> None:
        self._store._write(lambda db: db.execute(self._sql["delete"], (key,)))

    def delete_stamped_before(self, horizon: float) -> list[str]:
        def delete(db: sqlite3.Connection) -> list[str]:
            keys = [row[0] for row in db.execute(self._sql["stamped_before"], (horizon,))]
            if keys:
                db.execute(self._sql["delete_stamped_before"], (horizon,))
            return keys

        return self._store._write(delete)

    def claim(self, key: str, value: Any = True, *, durable: bool = True) -> bool:
        """Write `key` only if absent; True when this call wrote it (first delivery wins).

        One INSERT OR IGNORE: atomic in the database itself, not only within this process. `durable`
        changes nothing here: in WAL mode with synchronous=NORMAL a commit never waits for the disk."""
        encoded = _encode(value)
        return self._store._write(lambda db: db.execute(self._sql["claim"], (key, encoded)).rowcount == 1)

    def claim_many(self, items: dict[str, Any], *, durable: bool = True) -> set[str]:
        rows = [(key, _encode(value)) for key, value in items.items()]

        def insert(db: sqlite3.Connection) -> set[str]:
            return {key for key, encoded in rows if db.execute(self._sql["claim"], (key, encoded)).rowcount == 1}

        return self._store._write(insert) if rows else set()

    def update(self, key: str, change: Callable[[Any], Any], default: Any = None) -> Any:
        """Read-modify-write in one write transaction; returns the value written."""

        def modify(db: sqlite3.Connection) -> Any:
            row = db.execute(self._sql["get"], (key,)).fetchone()
            old = default if row is None else json.loads(row[0])
            value = change(old)
            if value is UNCHANGED:
                return old
            db.execute(self._sql["put"], (key, _encode(value)))
            return value

        return self._store._write(modify)

    def keys(self) -> Iterator[str]:
        return iter(self._store._read(lambda db: [row[0] for row in db.execute(self._sql["keys"])]))

    def items(self) -> Iterator[tuple[str, Any]]:
        rows = self._store._read(lambda db: db.execute(self._sql["items"]).fetchall())
        return iter([(key, json.loads(value)) for key, value in rows])

    def items_with(self, field: str, text: str) -> Iterator[tuple[str, Any]]:
        # The field's name and its text as JSON strings, each looked for alone: whatever separators the
        # record was written with (_encode's compact ones, or a hand's ", " and ": ").
        needles = (_encode(field), _encode(text))
        rows = self._store._read(lambda db: db.execute(self._sql["items_containing"], needles).fetchall())
        found = ((key, json.loads(value)) for key, value in rows)
        return iter([(key, value) for key, value in found if isinstance(value, dict) and value.get(field) == text])

    def values(self) -> Iterator[Any]:
        rows = self._store._read(lambda db: db.execute(self._sql["values"]).fetchall())
        return iter([json.loads(value) for (value,) in rows])

    def close(self) -> None:
        """Tables share their store's connection: closing the store closes them."""


class Store:
    """One connection per process, shared by all threads (each call holds it briefly)."""

    exclusive = True  # Store.open holds the file's lock: a second process is refused at start

    def __init__(self, path: str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._tables: dict[str, Table] = {}
        self._depth = 0  # writes nested in an update(): part of its transaction
        self._lock_fds: list[int] = []
        self._closed = False
        self._quiet = False  # while open() checks the file: its caller reports, no log line
        self.last_failure: tuple[float, str] | None = None  # (time.time(), reason) while writes fail

    @classmethod
    def open(cls, path: str) -> Store:
        """The bot's way in: the one process on this file, which answers a read and takes a write.

        Raises ConfigError ("store_in_use", "store_unusable": one line at start, exit 2) before anything
        has started; a corrupt, unreadable or unwritable file is caught here, not at the first request."""
        try:
            store = cls(path)
        except OSError as exc:
            raise ConfigError("store_unusable", path=path, reason=_reason(exc)) from exc
        store._quiet = True
        try:
            store._hold_lock()
            store._verify()
        except BaseException:
            store.close()
            raise
        store._quiet = False
        return store

    def table(self, name: str) -> Table:
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}; add it to store.TABLES with what it holds")
        with self.lock:
            if name not in self._tables:
                table = Table(self, name)
                self._write(lambda db: db.execute(table._sql["make"]))
                self._tables[name] = table
            return self._tables[name]

    # -- health ---------------------------------------------------------------------------------

    def healthy(self) -> bool:
        """True when the file answers a read and, after a failed write, takes a write again.

        /healthz asks this: while writes fail it is red, and the first write that succeeds (this
        probe or any other) turns it green without a restart."""
        try:
            meta = self.table("meta")
            if self.last_failure is None:
                meta.get("health")
            else:
                meta.put("health", {"checked_at": time.time()})
        except StoreUnavailable:
            return False
        return True

    # -- the connection -------------------------------------------------------------------------

    def _read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        with self.lock:
            try:
                return query(self._connection())
            except sqlite3.Error as exc:
                raise self._failed(exc) from exc

    def _write(self, change: Callable[[sqlite3.Connection], T]) -> T:
        """Runs `change` in one write transaction committed before returning; StoreUnavailable if the
        database refuses it (nothing of it is kept). Other exceptions of `change` roll it back too."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    return change(self._connection())
                finally:
                    self._depth -= 1
            try:
                db = self._connection()
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._failed(exc) from exc
            self._depth = 1
            try:
                result = change(db)
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback(db)
                raise self._failed(exc) from exc
            except BaseException:
                self._rollback(db)
                raise
            finally:
                self._depth = 0
            self._recovered()
            return result

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        if self._db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                # In WAL mode NORMAL survives a killed process; only a power cut may lose the last commits.
                db.execute("PRAGMA synchronous=NORMAL")
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    @staticmethod
    def _rollback(db: sqlite3.Connection) -> None:
        # A failed COMMIT may leave the transaction open (SQLITE_FULL) or already rolled back (I/O errors).
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")

    def _failed(self, exc: sqlite3.Error) -> StoreUnavailable:
        """Records the failure for health, drops the connection (the next call opens a new one)."""
        reason = _reason(exc)
        if self.last_failure is None and not self._quiet:
            logger.error("the store at %s fails: %s; /healthz is red until a write succeeds", self.path, reason)
        self.last_failure = (time.time(), reason)
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        return StoreUnavailable(reason)

    def _recovered(self) -> None:
        if self.last_failure is not None:
            logger.warning("the store at %s takes writes again", self.path)
            self.last_failure = None

    # -- opening and closing --------------------------------------------------------------------

    def _hold_lock(self) -> None:
        """An OS lock for this process's lifetime; the OS drops it however we end. The file's own lock,
        whatever name reaches it (a symlink), and the name's, which releases before that one still take."""
        if self.path == ":memory:":
            return
        if fcntl is None:  # pragma: no cover
            logger.warning("no file locking on this platform: run one process per BOT_DB_PATH")
            return
        # Told apart by where they lead: two names of one lock file would lock each other out.
        names = [os.path.realpath(self.path) + LOCK_SUFFIX, self.path + LOCK_SUFFIX]
        for lock_path in {os.path.realpath(name): name for name in reversed(names)}.values():
            self._lock_fds.append(self._lock(lock_path))

    def _lock(self, lock_path: str) -> int:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError("store_unusable", path=self.path, reason=_reason(exc)) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise ConfigError("store_in_use", path=self.path, pid=holder) from exc
        # The holder's pid, for the message a second process shows (best effort: the disk may be full).
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd

    def _verify(self) -> None:
        def check(db: sqlite3.Connection) -> None:
            (result,) = db.execute("PRAGMA quick_check").fetchone()
            if result != "ok":
                raise sqlite3.DatabaseError(f"the file is damaged ({result})")

        try:
            self._read(check)
            for name in TABLES:
                self.table(name)
            meta = self.table("meta")

            def write_and_undo(db: sqlite3.Connection) -> None:
                # Proves the file takes a write, and leaves the tables as they were.
                meta.put("opened", os.getpid())
                meta.delete("opened")

            self._write(write_and_undo)
        except StoreUnavailable as error:
            raise ConfigError("store_unusable", path=self.path, reason=error.reason) from error

    def now(self) -> float:
        """Seconds since the epoch: one process per file, so its own clock is the only one."""
        return time.time()

    def close(self) -> None:
        with self.lock:
            self._closed = True
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
                self._db = None
            self._tables.clear()
            while self._lock_fds:
                os.close(self._lock_fds.pop())  # releases the flock

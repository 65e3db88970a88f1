"""The one owner of sqlitedict: all bot state lives in one SQLite file, one table per kind of record.

Values are JSON (never pickle), and every write commits with `blocking=True` before returning, so
whatever a caller has written survives a kill -9 on the next line. WAL journaling keeps readers and
the single writer thread of each table from blocking one another.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlitedict import SqliteDict

# Every table the bot keeps, and what it holds (the modules named own the record shapes).
TABLES = {
    "cases": "case_id -> what the bot knows of a followed case (cases.py)",
    "links": "case_id|channel -> the card and thread a case is linked to in a channel (cases.py)",
    "threads": "channel|thread_ts -> case_id, to route thread replies (cases.py)",
    "events": "legacy per-feature markers from before the journal; only pruned now (cases/records.py)",
    "journal": "idempotency key -> work noted before an ack: lease, progress, outcome (store/journal.py)",
    "outbound": "hash of case and body -> a communication sent from Slack (cases.py writes, the poller reads)",
    "sync": "per-case sync cursor and posted-communication keys (sync_state.py)",
    "watches": "channel -> watch settings for cases opened outside Slack (watch.py)",
    "schedules": "channel -> digest schedule (schedule.py)",
    "digests": "channel -> previous digest state; @-keys: refresh bookkeeping (digest.py, digest_refresh.py)",
    "meta": "bot-wide markers (health, versions)",
    "leases": "lease name -> the replica holding it and its expiry by the store's clock (store/lease.py)",
    "requests": "Slack signature of a served request -> its timestamp, to refuse replays; pruned after 10 min (web.py)",
    "channel_accounts": "channel -> the AWS account an admin made its default (accounts/directory.py)",
}


def _encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class Table:
    """A JSON dict on disk. Reads are direct; writes commit before returning."""

    def __init__(self, path: str, name: str) -> None:
        self.name = name
        self._dict = SqliteDict(
            path,
            tablename=name,
            autocommit=False,
            journal_mode="WAL",
            encode=_encode,
            decode=json.loads,
            timeout=30,
            outer_stack=False,
        )
        self._lock = threading.RLock()

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self._dict[key]
        except KeyError:
            return default

    def __contains__(self, key: str) -> bool:
        return key in self._dict

    def __len__(self) -> int:
        return len(self._dict)

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._dict[key] = value
            self._dict.commit(blocking=True)

    def put_many(self, items: dict[str, Any]) -> None:
        """Write several records in one transaction: all or none survive a crash."""
        if not items:
            return
        # sqlitedict writes each item as it is set: a value that is not JSON must fail before the first.
        for value in items.values():
            _encode(value)
        with self._lock:
            for key, value in items.items():
                self._dict[key] = value
            self._dict.commit(blocking=True)

    def delete(self, key: str) -> None:
        with self._lock:
            if key in self._dict:
                del self._dict[key]
                self._dict.commit(blocking=True)

    def claim(self, key: str, value: Any = True) -> bool:
        """Write `key` only if absent; True when this call wrote it (first delivery wins)."""
        with self._lock:
            if key in self._dict:
                return False
            self._dict[key] = value
            self._dict.commit(blocking=True)
            return True

    def update(self, key: str, change: Callable[[Any], Any], default: Any = None) -> Any:
        """Read-modify-write under this table's lock; returns the value written."""
        with self._lock:
            value = change(self.get(key, default))
            self._dict[key] = value
            self._dict.commit(blocking=True)
            return value

    def keys(self) -> Iterator[str]:
        return iter(list(self._dict.keys()))

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(list(self._dict.items()))

    def values(self) -> Iterator[Any]:
        return iter(list(self._dict.values()))

    def close(self) -> None:
        self._dict.close()


class Store:
    """Opens tables on first use; one instance per process, shared by all threads."""

    def __init__(self, path: str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._tables: dict[str, Table] = {}
        self._lock = threading.Lock()

    def table(self, name: str) -> Table:
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}; add it to store.TABLES with what it holds")
        with self._lock:
            if name not in self._tables:
                self._tables[name] = Table(self.path, name)
            return self._tables[name]

    def healthy(self) -> bool:
        """True when the file opens and answers a read."""
        try:
            self.table("meta").get("health")
        except Exception:  # noqa: BLE001 - health reports any failure as unhealthy
            return False
        return True

    def now(self) -> float:
        """Seconds since the epoch: one process per file, so its own clock is the only one."""
        return time.time()

    def close(self) -> None:
        with self._lock:
            for table in self._tables.values():
                table.close()
            self._tables.clear()

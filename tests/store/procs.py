"""Work for the processes that contend on one PostgreSQL database (spawned: a fresh interpreter each)."""

from __future__ import annotations

from typing import Any


def claim_keys(url: str, keys: list[str], start: Any, durable: bool = True) -> list[str]:
    """Claim every key; the keys this process won."""
    from bot.store.postgres import PostgresStore

    store = PostgresStore.connect(url, pool_size=2)
    try:
        events = store.table("events")
        start.wait(60)
        return [key for key in keys if events.claim(key, {"pid": __import__("os").getpid()}, durable=durable)]
    finally:
        store.close()


def increment(url: str, times: int, start: Any) -> None:
    from bot.store.postgres import PostgresStore

    store = PostgresStore.connect(url, pool_size=2)
    try:
        sync = store.table("sync")
        start.wait(60)
        for _ in range(times):
            sync.update("counter", lambda old: {"n": old["n"] + 1}, default={"n": 0})
    finally:
        store.close()


def migrate_at_once(url: str, start: Any) -> int:
    """Open the store (which migrates) together with the others; the version found before."""
    import psycopg

    from bot.store.postgres import migrate

    with psycopg.connect(url, autocommit=True) as conn:
        start.wait(60)
        return migrate(conn)

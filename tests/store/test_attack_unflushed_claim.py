"""Attack: a durable=False claim whose statement fails leaves its pooled connection durable."""

from __future__ import annotations

import random
import string

import psycopg
import pytest

from bot.store.backend import StoreError
from bot.store.postgres import PostgresStore


def test_a_failed_unflushed_claim_leaves_its_connection_durable(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{pg_url.rsplit("/", 1)[-1]}" SET synchronous_commit = on')
    store = PostgresStore.connect(pg_url, pool_size=1)
    try:
        requests = store.table("requests")
        # A key too large for the primary key's btree: the server evaluates the CTE, then the insert fails.
        huge = "".join(random.choices(string.ascii_letters, k=20000))
        with pytest.raises((psycopg.Error, StoreError)):
            requests.claim(huge, 1, durable=False)
        with store.connection() as conn:
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert requests.claim("v0=after", 1) is True
    finally:
        store.close()

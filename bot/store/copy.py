"""`python -m bot store copy`: move a bot's state between a sqlitedict file and PostgreSQL, either way.

Run it with the bot stopped: it copies table by table (each table in one transaction), so a bot
writing meanwhile could leave the target between two states.
"""

from __future__ import annotations

import os
from typing import TextIO

from bot import render
from bot.config import is_postgres_url
from bot.errors import BotError
from bot.store.backend import Store, open_location
from bot.store.tables import TABLES


class CopyRefused(BotError):
    """The copy would lose or mix data; nothing was written."""


def display(location: str) -> str:
    """How a location is shown: a path as given, a URL without its password."""
    if is_postgres_url(location):
        from bot.store.postgres import describe

        return describe(location)
    return location


def _same(source: str, target: str) -> bool:
    if is_postgres_url(source) or is_postgres_url(target):
        return display(source) == display(target)
    return os.path.realpath(source) == os.path.realpath(target)


def record_counts(store: Store) -> dict[str, int]:
    """Records per table, for every table the bot knows."""
    return {name: len(store.table(name)) for name in TABLES}


def copy_store(source: Store, target: Store, *, force: bool = False) -> dict[str, int]:
    """Make every table of `target` hold exactly the records of `source`; returns the records per table.

    A target that holds anything is refused unless `force`: then its records are replaced.
    """
    occupied = {name: count for name, count in record_counts(target).items() if count}
    if occupied and not force:
        counts = ", ".join(f"{name}: {count}" for name, count in occupied.items())
        raise CopyRefused("store_copy_target_not_empty", counts=counts)
    copied: dict[str, int] = {}
    for name in TABLES:
        # items() lists records in the order they were last written; put_many keeps it.
        records = dict(source.table(name).items())
        table = target.table(name)
        if name in occupied:
            for key in set(table.keys()) - records.keys():
                table.delete(key)
        table.put_many(records)
        copied[name] = len(records)
    return copied


def run_copy(source: str, target: str, *, force: bool, out: TextIO, err: TextIO) -> int:
    """The console command: 0 when copied, 1 when refused (with the reason); ConfigError when unreachable."""
    try:
        if _same(source, target):
            raise CopyRefused("store_copy_same", location=display(source))
        if not is_postgres_url(source) and not os.path.isfile(source):
            # Opening a missing file would create an empty store and "copy" nothing.
            raise CopyRefused("store_copy_no_source", source=source)
        copied = _copy_between(source, target, force=force)
    except CopyRefused as refused:
        print(render.text(refused.key, target=display(target), **refused.params), file=err)
        return 1
    for name, count in copied.items():
        print(render.text("store_copy_table", table=name, count=count), file=out)
    print(
        render.text("store_copy_done", source=display(source), target=display(target), total=sum(copied.values())),
        file=out,
    )
    return 0


def _copy_between(source: str, target: str, *, force: bool) -> dict[str, int]:
    source_store = open_location(source)
    try:
        target_store = open_location(target)
        try:
            return copy_store(source_store, target_store, force=force)
        finally:
            target_store.close()
    finally:
        source_store.close()

"""A full disk: the store says so at once (no write waits forever), /healthz turns red, and the work
that could not be recorded resumes, once and in full, when space is back.

The full disk is real: a small tmpfs filled to the last page (mounting needs root, which CI has), or,
unprivileged, a file-size limit (RLIMIT_FSIZE) on a process of its own.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.store.errors import StoreUnavailable
from bot.store.tables import Store
from tests.sync.helpers import communication_messages, linked_case, shown_text

ROOT = Path(__file__).resolve().parent.parent
BIG = "x" * 256 * 1024  # more than any slack a WAL file or a page cache could hold


class SmallDisk:
    """A 4 MB filesystem: fill() takes every free page, free() gives them back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._filler = path / "filler"

    def fill(self) -> None:
        chunk = b"\0" * 4096
        with open(self._filler, "ab", buffering=0) as filler:
            while True:
                try:
                    filler.write(chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    return

    def free(self) -> None:
        self._filler.unlink()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root, as in CI): {mounted.stderr.strip()}")
    try:
        yield SmallDisk(mount_point)
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def finishes(call: Callable[[], Any], timeout: float = 20.0) -> tuple[bool, Any]:
    """Runs `call` on a thread: (True, its result or the exception it raised), or (False, None) if it hangs."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # noqa: BLE001 - the outcome is what the test looks at
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    return (not thread.is_alive(), outcome[0] if outcome else None)


def test_a_write_to_a_full_disk_fails_at_once_and_the_next_one_works_when_space_is_back(small_disk) -> None:
    store = Store.open(str(small_disk.path / "bot.sqlite"))
    try:
        store.table("cases").put("before", {"kept": True})
        small_disk.fill()

        done, outcome = finishes(lambda: store.table("cases").put("during", BIG))
        assert done, "a write to a full disk must not wait forever"
        assert isinstance(outcome, StoreUnavailable), outcome
        assert "full" in outcome.reason
        assert store.healthy() is False
        done, outcome = finishes(lambda: store.table("links").put("other table", 1))
        assert done and isinstance(outcome, StoreUnavailable), outcome

        small_disk.free()

        assert store.healthy() is True
        store.table("cases").put("during", BIG)
        store.table("links").put("other table", 1)
        assert store.table("cases").get("before") == {"kept": True}
        assert store.table("cases").get("during") == BIG
    finally:
        store.close()
    reopened = Store.open(str(small_disk.path / "bot.sqlite"))
    try:
        assert reopened.table("cases").get("during") == BIG
        assert reopened.table("links").get("other table") == 1
    finally:
        reopened.close()


_REFUSED_WRITES = """
import faulthandler, json, resource, sys
faulthandler.dump_traceback_later(30, exit=True)  # a hang is the failure under test: end it loudly

from bot.store.errors import StoreUnavailable
from bot.store.tables import Store

store = Store.open(sys.argv[1])
store.table("cases").put("before", 1)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (1, hard))  # no file may grow: every write is refused
seen = {}
for name, write in [
    ("put", lambda: store.table("cases").put("during", "x" * 65536)),
    ("claim", lambda: store.table("events").claim("Ev1")),
    ("update", lambda: store.table("sync").update("c", lambda v: 1)),
]:
    try:
        write()
        seen[name] = "written"
    except StoreUnavailable as error:
        seen[name] = "refused"
seen["healthy_while_refused"] = store.healthy()
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
seen["healthy_after"] = store.healthy()
store.table("cases").put("during", "x" * 65536)
seen["claimed_after"] = store.table("events").claim("Ev1")
seen["kept"] = [store.table("cases").get("before"), len(store.table("cases").get("during"))]
print(json.dumps(seen))
"""


def test_writes_the_os_refuses_fail_clearly_and_resume_when_it_accepts_them_again(tmp_path: Path) -> None:
    """The unprivileged twin of the tmpfs test: the OS refuses to grow any file (RLIMIT_FSIZE)."""
    done = subprocess.run(
        [sys.executable, "-c", _REFUSED_WRITES, str(tmp_path / "bot.sqlite")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )

    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen == {
        "put": "refused",
        "claim": "refused",
        "update": "refused",
        "healthy_while_refused": False,
        "healthy_after": True,
        "claimed_after": True,
        "kept": [1, 65536],
    }


def test_a_full_disk_turns_health_red_and_the_poller_resumes_without_loss_when_space_is_back(
    bot_factory, small_disk
) -> None:
    bot = bot_factory(db_path=small_disk.path / "bot.sqlite")
    case, thread = linked_case(bot)
    assert bot.health().status == 200
    answer = f"We are looking into it ({uuid.uuid4().hex}). " + "details " * 4000

    small_disk.fill()
    bot.sandbox.add_aws_reply(case.case_id, answer)
    for _ in range(2):
        done, outcome = finishes(bot.services.sync.run_cycle)
        assert done, "the poller's cycle must not wait forever on a full disk"
    health = bot.health()
    assert health.status == 503
    assert health.json["store"] is False

    small_disk.free()

    assert bot.health().status == 200
    for _ in range(3):
        done, outcome = finishes(bot.services.sync.run_cycle)
        assert done and not isinstance(outcome, BaseException), outcome
    [message] = communication_messages(bot, "C1", thread)
    assert shown_text(message).startswith(answer[:60])
    assert os.path.exists(small_disk.path / "bot.sqlite")

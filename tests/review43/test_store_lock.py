"""Review 43, F1: 15b5d51 locks realpath(path)+".lock" and path+".lock". When the two names differ only in
their directory part they are one file, and flock() on a second descriptor of a file this process already
locked is refused: the bot takes its own lock for another process and refuses to start. BOT_DB_PATH's
default, ./data/bot.sqlite, is such a name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError
from bot.store.tables import Store

ROOT = Path(__file__).resolve().parents[2]


def _opens(path: str) -> str:
    try:
        store = Store.open(path)
    except ConfigError as error:
        return f"refused: {error}"
    store.close()
    return "opened"


def test_the_default_relative_db_path_opens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert _opens("./data/bot.sqlite") == "opened"


def test_a_plain_relative_name_opens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert _opens("bot.sqlite") == "opened"


def test_a_path_whose_directory_is_a_symlink_opens(tmp_path: Path) -> None:
    # /data -> /mnt/volume (a mounted volume); macOS's /tmp -> /private/tmp and /var -> /private/var.
    (tmp_path / "volume").mkdir()
    (tmp_path / "data").symlink_to(tmp_path / "volume")
    assert _opens(str(tmp_path / "data" / "bot.sqlite")) == "opened"


def test_a_path_with_dot_dot_opens(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    assert _opens(str(tmp_path / "a" / ".." / "bot.sqlite")) == "opened"


def test_serve_with_the_default_bot_db_path_gets_past_the_store(tmp_path: Path) -> None:
    # The README's and config.py's default. The bot exits 2 blaming "another bot process" -- its own pid.
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    code = (
        "from bot.config import load_settings; from bot.store.backend import open_store; "
        "open_store(load_settings({}, require_slack=False))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert "another bot process" not in done.stderr, done.stderr[-400:]
    assert done.returncode == 0, done.stderr[-400:]


def test_a_case_reference_takes_ascii_digits_only():
    # Review 43, 4: \d took any script's digits (١٢٣, １２３), which went to AWS as display IDs.
    from bot.accounts.routing import parse_account_ref
    from bot.aws.gateway import parse_case_ref
    from bot.errors import UserInputError

    for ref in ("١٢٣", "１２３"):
        with pytest.raises(UserInputError):
            parse_case_ref(ref)
        assert parse_account_ref(f"default:{ref}") is None
    assert parse_case_ref("123") == {"displayId": "123"}

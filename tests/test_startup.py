"""A bad setup is refused at start, by real processes: one clear line on stderr, exit 2, no traceback."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_bot(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-m", "bot", *args],
            cwd=ROOT,
            env={**os.environ, "NO_PROXY": "127.0.0.1,localhost", **env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as expired:
        raise AssertionError(f"`bot {' '.join(args)}` did not stop at start: {expired.stderr!r}") from None


def assert_refused(done: subprocess.CompletedProcess[str], *words: str, code: int = 2) -> None:
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    assert len(lines) == 1, done.stderr
    assert done.returncode == code, done.stderr
    for word in words:
        assert word in lines[0], lines[0]


def base_env(tmp_path: Path) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_SIGNING_SECRET": "test-secret",
        "SLACK_API_URL": "http://127.0.0.1:9/api/",  # never reached: the bot stops before Slack
        "BOT_DB_PATH": str(tmp_path / "data" / "bot.sqlite"),
        "BOT_SANDBOX_STATE": "",
    }


def corrupt_file(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "corrupt.sqlite"
    path.write_bytes(b"this is not a database, it only sits where one should be" * 100)
    return {"BOT_DB_PATH": str(path)}


def damaged_database(tmp_path: Path) -> dict[str, str]:
    """A real SQLite file whose pages were overwritten in the middle (a torn disk, a bad copy)."""
    path = tmp_path / "damaged.sqlite"
    with sqlite3.connect(path) as db:
        db.execute('CREATE TABLE "cases" (key TEXT PRIMARY KEY, value BLOB)')
        db.executemany('INSERT INTO "cases" VALUES (?, ?)', [(f"case-{i}", "x" * 500) for i in range(200)])
    with open(path, "r+b") as file:
        file.seek(4096 + 100)
        file.write(b"\xff" * 8000)
    return {"BOT_DB_PATH": str(path)}


def a_directory(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "is-a-directory.sqlite"
    path.mkdir()
    return {"BOT_DB_PATH": str(path)}


def under_a_file(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "plain-file").write_text("not a folder")
    return {"BOT_DB_PATH": str(tmp_path / "plain-file" / "bot.sqlite")}


BAD_DB_PATHS: dict[str, Callable[[Path], dict[str, str]]] = {
    "corrupt": corrupt_file,
    "damaged": damaged_database,
    "a directory": a_directory,
    "under a file": under_a_file,
}


@pytest.mark.parametrize(
    "command, case",
    [(["serve", "--sandbox"], case) for case in sorted(BAD_DB_PATHS)]
    + [(["digest", "--print", "--sandbox"], case) for case in ("corrupt", "under a file")],
)
def test_an_unusable_db_path_is_refused_at_start(tmp_path: Path, command: list[str], case: str) -> None:
    env = {**base_env(tmp_path), **BAD_DB_PATHS[case](tmp_path)}

    done = run_bot(command, env)

    assert_refused(done, "BOT_DB_PATH", env["BOT_DB_PATH"])


@pytest.fixture
def read_only_folder(tmp_path: Path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    # root ignores permissions: a read-only filesystem is what a root process cannot write to.
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"root cannot mount a read-only tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_db_path_in_a_read_only_folder_is_refused_at_start(tmp_path: Path, read_only_folder: Path) -> None:
    env = {**base_env(tmp_path), "BOT_DB_PATH": str(read_only_folder / "bot.sqlite")}

    done = run_bot(["serve", "--sandbox"], env)

    assert_refused(done, "BOT_DB_PATH", str(read_only_folder / "bot.sqlite"))


BAD_SETTINGS = [
    ({"PORT": "70000"}, [], "PORT must be between 1 and 65535"),
    ({}, ["--port", "0"], "PORT must be between 1 and 65535"),
    ({"LOG_LEVEL": "LOUD"}, [], "LOG_LEVEL must be one of"),
    ({"BOT_SANDBOX_REPLY_SECONDS": "soon"}, [], "BOT_SANDBOX_REPLY_SECONDS must be a number"),
]


@pytest.mark.parametrize("env, serve_args, words", BAD_SETTINGS)
def test_a_bad_setting_is_refused_by_serve(tmp_path: Path, env: dict[str, str], serve_args: list, words: str) -> None:
    done = run_bot(["--sandbox", "serve", *serve_args], {**base_env(tmp_path), **env})

    assert_refused(done, words)
    assert not (tmp_path / "data").exists(), "nothing may be created before the settings are known good"


def test_a_bad_setting_is_refused_by_digest_print_and_check(tmp_path: Path) -> None:
    digest = run_bot(["digest", "--print", "--sandbox"], {**base_env(tmp_path), "LOG_LEVEL": "LOUD"})
    # `check` answers 0 or 1 (the contract): a bad setup is one of its failures.
    check = run_bot(["check", "--sandbox"], {**base_env(tmp_path), "BOT_SANDBOX_LATENCY_SECONDS": "0.1s"})

    assert_refused(digest, "LOG_LEVEL must be one of")
    assert_refused(check, "BOT_SANDBOX_LATENCY_SECONDS must be a number", code=1)


def test_digest_print_shows_aws_error_text_as_text(tmp_path: Path) -> None:
    """The sandbox answers every call with an error whose text has <, > and &; the terminal shows them."""
    from bot.sandbox import SandboxServer

    sandbox = SandboxServer(reply_delay_seconds=-1, latency_seconds=0.0, state_path=None).start()
    try:
        sandbox.inject_fault(operation="*", code="ValidationException", message='Check "<all>" & more failed', count=50)
        env = {
            **base_env(tmp_path),
            "AWS_ENDPOINT_URL_SUPPORT": sandbox.url,
            "AWS_ACCESS_KEY_ID": "sandbox",
            "AWS_SECRET_ACCESS_KEY": "sandbox",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        done = run_bot(["digest", "--print"], env)
    finally:
        sandbox.stop()

    assert done.returncode == 1, done.stderr
    assert 'Check "<all>" & more failed' in done.stdout, done.stdout
    assert "&lt;" not in done.stdout and "&amp;" not in done.stdout

"""PipelineWatch: polls that keep finding changes while no event arrives make one log line per silence."""

from __future__ import annotations

import logging

import pytest

from bot.events.watch import PipelineWatch


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def broken_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "event pipeline looks broken" in r.getMessage()]


def test_changes_found_by_polls_during_a_long_silence_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.events.watch")
    clock = Clock()
    watch = PipelineWatch(silence_seconds=3600, misses=2, clock=clock)

    clock.now += 1800
    assert not watch.note_poll_found_changes(3)  # not silent long enough yet
    clock.now += 1800
    assert watch.note_poll_found_changes(1)  # an hour of silence, two polls with changes
    clock.now += 900
    assert not watch.note_poll_found_changes(1)  # said once; not again within the silence period
    assert len(broken_lines(caplog)) == 1
    assert "2 polls found changes" in broken_lines(caplog)[0]
    assert watch.health()["looks_broken"]

    clock.now += 3600
    assert watch.note_poll_found_changes(1)  # still broken an hour later: said again
    assert len(broken_lines(caplog)) == 2


def test_an_event_resets_the_watch(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    watch = PipelineWatch(silence_seconds=3600, misses=2, clock=clock)
    clock.now += 7200
    watch.note_event()
    clock.now += 1800
    assert not watch.note_poll_found_changes(1)
    assert not watch.note_poll_found_changes(1)  # events arrive: a missed one now and then is normal
    assert watch.health() == {
        "last_event_at": "2027-01-15T10:00:00+00:00",
        "polls_with_changes_since_last_event": 2,
        "looks_broken": False,
    }
    assert broken_lines(caplog) == []


def test_a_poll_without_changes_says_nothing_about_the_pipeline() -> None:
    clock = Clock()
    watch = PipelineWatch(silence_seconds=10, misses=1, clock=clock)
    clock.now += 100
    assert not watch.note_poll_found_changes(0)
    assert watch.health()["polls_with_changes_since_last_event"] == 0

"""Placeholder: filled in by the case lifecycle work."""

from slack_bolt import App


def register(app: App) -> None:
    pass

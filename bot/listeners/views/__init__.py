"""Modal submissions, one module per surface."""

from slack_bolt import App

from bot.listeners.views import cases


def register(app: App) -> None:
    cases.register(app)

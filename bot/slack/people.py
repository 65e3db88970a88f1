"""Display names of Slack users (users.info), cached for an hour."""

from __future__ import annotations

import logging
import threading
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import slack_error

logger = logging.getLogger(__name__)

NAME_TTL_SECONDS = 3600.0


class People:
    def __init__(self, client: WebClient) -> None:
        self.client = client
        self._names: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def display_name(self, user: str) -> str:
        """The name a person shows in Slack; their ID when Slack cannot tell."""
        with self._lock:
            cached = self._names.get(user)
        if cached and time.monotonic() - cached[0] < NAME_TTL_SECONDS:
            return cached[1]
        name = user
        try:
            profile = self.client.users_info(user=user)["user"]
            name = (
                profile.get("profile", {}).get("display_name")
                or profile.get("real_name")
                or profile.get("profile", {}).get("real_name")
                or profile.get("name")
                or user
            )
        except (SlackApiError, OSError) as exc:
            logger.warning("users.info %s failed: %s", user, slack_error(exc))
        with self._lock:
            self._names[user] = (time.monotonic(), name)
        return name

    def name_if_known(self, user: str) -> str:
        """A name without asking Slack (for work that must finish before an ack)."""
        with self._lock:
            cached = self._names.get(user)
        return cached[1] if cached else user

"""What a slash command asked, as the sub-commands see it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CommandRequest:
    """The parts of a slash command payload the sub-commands use."""

    user_id: str
    channel_id: str
    text: str
    args: list[str]
    trigger_id: str
    team_id: str = ""
    intake: str = ""  # the store key of what was noted before the ack (see PREPARE)

    @property
    def rest(self) -> str:
        """Everything after the sub-command word, spacing and newlines kept."""
        parts = self.text.strip().split(maxsplit=1)
        return parts[1] if len(parts) > 1 else ""

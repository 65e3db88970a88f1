"""The case lifecycle: open, link, reply, resolve, and the cards that show a case."""

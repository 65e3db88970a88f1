"""The poller: AWS's new communications and statuses into the linked threads, exactly once."""

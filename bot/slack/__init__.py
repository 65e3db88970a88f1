"""Every Slack Web API call outside listeners."""

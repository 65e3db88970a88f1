"""Trusted Advisor digests: collect, shape, lay out, refresh, schedule."""

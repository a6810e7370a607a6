"""Keeping a model's logs as long as they must be kept, and no longer (issue 38)."""

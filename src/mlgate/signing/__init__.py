"""Signed versions: every version's files signed in the OpenSSF Model Signing format (issue 38)."""

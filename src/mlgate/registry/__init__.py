"""Registered models and their immutable versions, and where their artifacts live."""

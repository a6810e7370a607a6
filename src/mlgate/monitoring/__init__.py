"""Watching served models: sampled prediction logs, drift against the training rows, accuracy
from ground-truth feedback, and alerts."""

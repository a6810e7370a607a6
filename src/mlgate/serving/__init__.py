"""Answering prediction requests: loaded models, request payloads, the predict use case."""

"""Subscription plans: rate limits, quotas in requests and rows, metering and usage export."""

"""Calls mlgate makes to other servers (webhooks, usage sinks), only to addresses it may call.

`addresses` holds the rule (which IP addresses are inside, the operator's allow-list), `client`
the one HTTP client every webhook and sink sends through (`Outbound`), `model` its records.
"""

"""SCIM 2.0 provisioning (issue 36): the identity provider creates, updates and removes users
and groups; see service.py."""

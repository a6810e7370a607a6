"""Single sign-on with an OpenID Connect provider (issue 36): ID and access tokens checked
against the provider's keys, users made at their first sign-in, roles from groups."""

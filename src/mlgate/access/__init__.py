"""Who may call what: API keys today; users, roles and grants slot in here."""

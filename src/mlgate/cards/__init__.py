"""Model cards with slice metrics, and the ML bill of materials (issue 38)."""

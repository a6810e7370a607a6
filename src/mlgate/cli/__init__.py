"""The command line: a module per command group; main.py turns errors into exit codes."""

"""Further `gridcase` commands, one module per area; each has `register(app)`, called by api/cli.py."""

"""Integration lifecycle: the service layer shared by the admin API and the CLI."""

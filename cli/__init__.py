"""The `dnsctl` command line: one typer app (main.py) that fronts every part of the system."""

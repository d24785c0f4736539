"""`python -m session_kit` runs the CLI."""

from .cli import main

main()

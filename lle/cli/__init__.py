"""Command-line interface (Typer). Commands import heavy modules only inside their bodies."""

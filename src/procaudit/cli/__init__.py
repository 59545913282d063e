"""Typer commands: thin wrappers that build a config, call the library and pick a formatter."""

"""Rendering results for people and machines: table, JSON, CSV, HTML."""

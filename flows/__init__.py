"""Prefect flows: each reads top to bottom like the picture in the README."""

"""Gleaner: scraped article dumps in, a validated DuckDB warehouse out."""

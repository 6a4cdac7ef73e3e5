"""Gleaner's pipeline steps: plain, typed functions (one module per step) and the thin
Prefect tasks that wrap them."""

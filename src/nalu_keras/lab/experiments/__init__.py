"""Experiments: one module per experiment, a frozen config -> tidy result rows."""

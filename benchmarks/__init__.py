"""Performance and fault harnesses that print figures (run as scripts or with ``python -m``)."""

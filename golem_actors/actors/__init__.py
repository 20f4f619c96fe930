"""The actor runtime: one module per actor, plus the shared timer thread they use."""

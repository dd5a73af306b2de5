"""`parley chaos`: the suite's guarantees checked under kills and restarts, on a Redis of its own."""

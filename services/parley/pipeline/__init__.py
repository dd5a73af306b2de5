"""The pipeline worker: takes each accepted message from the inbound log through every service."""

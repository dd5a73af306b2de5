"""The conversations service: threading, the conversation record, listing and metrics."""

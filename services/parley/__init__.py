"""Parley: social-media customer service triage as gRPC microservices."""

__version__ = "0.1.0"

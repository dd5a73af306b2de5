"""The pipeline: the worker that drives each accepted message through the services, and the one stream
consumer that it and every follower of a Redis stream read through."""

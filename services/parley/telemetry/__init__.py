"""What every process shows about itself: Prometheus metrics, OpenTelemetry traces, structured logs.

`metrics` defines the suite's metrics, the gRPC server interceptor that counts and times every call, and
the `/metrics` endpoint; `collectors` read the figures kept in Redis at scrape time; `tracing` carries one
trace per message across the pipeline's hops; `logs` writes one JSON object per line when asked to.
"""

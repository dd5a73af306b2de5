"""Generated protobuf and gRPC code for parley.v1 (scripts/gen_protos.py)."""

"""The supervisor console: a web page per view of the floor, served by its own process over the services'
gRPC APIs (`parley serve console`)."""

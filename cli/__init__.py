"""The ``storywire`` command: submit jobs, watch them, read stories. Talks only gRPC to the services."""

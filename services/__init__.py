"""The three storywire services. They never import one another: they meet only through gRPC."""

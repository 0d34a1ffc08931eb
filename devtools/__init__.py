"""Developer tooling: code generation and the local PostgreSQL/Redis stack. Not shipped in the image."""

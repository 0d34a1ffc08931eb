"""The store service: jobs, articles and stories in PostgreSQL; progress as streams."""

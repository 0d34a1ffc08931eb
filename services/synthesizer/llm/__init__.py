"""The LLM client library: OpenAI-compatible client, two-tier cache, coalescing, adaptive concurrency,
retries and fallback. No gRPC in here, so it can be tested and benchmarked alone."""

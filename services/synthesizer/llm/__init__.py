"""The LLM client library: OpenAI-compatible client, two-tier cache, coalescing, adaptive concurrency and
a resilient caller (retries, capacity handling). It imports nothing else of the synthesizer and has no
gRPC in it, so it can be tested and benchmarked alone; the story-writing policy lives in ``stories``."""

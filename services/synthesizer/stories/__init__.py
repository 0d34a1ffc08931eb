"""Story writing policy above the LLM client library: the prompt, the grounding check, the extractive
fallback and the writer that ties them to the cache, coalescing and the resilient LLM caller."""

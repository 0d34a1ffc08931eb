"""The synthesizer service: clusters articles and writes one story per cluster with an LLM."""

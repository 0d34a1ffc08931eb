"""Synthesizer settings (STORYWIRE_SYNTHESIZER_*, STORYWIRE_LLM_*, STORYWIRE_CACHE_*, STORYWIRE_CLUSTER_*)."""

from typing import Literal

from pydantic import Field, SecretStr

from runtime.settings import AttemptSettings, RedisSettings


class SynthesizerSettings(RedisSettings, AttemptSettings):
    synthesizer_port: int = Field(default=50052, ge=0, le=65535, description="gRPC port of the synthesizer.")
    llm_base_url: str = Field(
        default="",
        description="OpenAI-compatible API base URL, e.g. http://127.0.0.1:11434/v1 for Ollama "
        "(empty = no LLM: every story is the labelled extractive summary).",
    )
    llm_model: str = Field(default="llama3.2", description="Model name sent to the backend.")
    llm_api_key: SecretStr = Field(
        default=SecretStr(""),
        description="Bearer token for the backend (OpenAI); keep it in a Secret (also read from "
        "`/run/secrets/storywire_llm_api_key`). Never logged.",
    )
    llm_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=120, description="LLM connect timeout.")
    llm_read_timeout_seconds: float = Field(default=120.0, gt=0, le=3600, description="LLM read timeout.")
    llm_total_timeout_seconds: float = Field(
        default=180.0, gt=0, le=3600, description="Deadline of one LLM call, connect to last byte."
    )
    llm_max_tokens: int = Field(default=300, ge=16, le=32768, description="Default completion token limit.")
    llm_temperature: float = Field(default=0.2, ge=0, le=2, description="Default sampling temperature.")
    llm_prompt: Literal["auto", "compact", "full"] = Field(
        default="auto",
        description="Prompt style: full (up to 8 articles of 700 characters, for large models), compact (4 "
        "articles cut to their title and two key sentences, greedy decoding: for small local models), or "
        "auto (compact when a llama-server reports a model under 1B parameters or a slot context under "
        "4,096 tokens, else full).",
    )
    llm_structured_output: Literal["auto", "json_schema", "grammar", "grounded", "off"] = Field(
        default="auto",
        description="How the answer format is enforced: grammar (GBNF, llama-server), json_schema "
        "(response_format: OpenAI, vLLM, Ollama, llama-server), grounded (llama-server: a grammar that only "
        "admits names and numbers of the cluster's articles), off (TITLE/SUMMARY text), or auto (grounded "
        "on llama-server with the compact prompt, grammar on llama-server otherwise, else json_schema); "
        "a backend that rejects it gets the text format.",
    )
    llm_max_attempts: int = Field(default=4, ge=1, le=20, description="Attempts per LLM call (retries + 1).")
    llm_concurrency_initial: int = Field(
        default=64,
        ge=1,
        le=4096,
        description="Adaptive limit of concurrent LLM calls once the cold start's probe (one call alone, "
        "then two together) has seen two calls run in parallel; a CPU-bound or one-slot backend stays at 1.",
    )
    llm_concurrency_min: int = Field(default=1, ge=1, le=4096, description="Adaptive limit lower bound.")
    llm_concurrency_max: int = Field(default=256, ge=1, le=4096, description="Adaptive limit upper bound.")
    llm_max_workers: int = Field(
        default=0, ge=0, le=4096, description="A fixed number of concurrent LLM calls (0 = adaptive)."
    )
    llm_stall_seconds: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="Health reports NOT_SERVING when work has waited this long for the LLM with no call "
        "making progress (keep it above the slowest expected call).",
    )
    cache_memory_bytes: int = Field(
        default=64 * 1024 * 1024, ge=0, description="Size bound of the in-process LLM cache, in bytes."
    )
    cache_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60, description="TTL of Redis cache entries.")
    cluster_release_idle_ms: int = Field(
        default=500,
        ge=0,
        le=60_000,
        description="Release provisional stories when the input pauses this long: one cluster first, then up "
        "to twice as many settled clusters (no new article for a while) per release (0 = cluster only at its "
        "end); the final stories are always all the articles clustered at once.",
    )
    cluster_backend: Literal["events", "tfidf", "embeddings"] = Field(
        default="events",
        description="Clustering: events (default: word, name and time agreement, average linkage, default "
        "threshold 0.38 = average same-event probability), tfidf (greedy TF-IDF centroids, threshold 0.3) or "
        "embeddings (all-MiniLM-L6-v2 centroids, threshold 0.5; needs `make embeddings-setup`).",
    )
    cluster_embeddings_model_dir: str = Field(
        default="",
        description="Directory with all-MiniLM-L6-v2's model.safetensors, config.json and tokenizer.json "
        "(empty = the copy installed by `make embeddings-setup`).",
    )
    store_address: str = Field(default="127.0.0.1:50053", description="host:port of the store service.")
    fetcher_address: str = Field(default="127.0.0.1:50051", description="host:port of the fetcher service.")
    worker_enabled: bool = Field(
        default=True, description="Claim and run queued jobs (the pipeline coordinator) in this replica."
    )
    worker_concurrent_jobs: int = Field(default=2, ge=1, le=64, description="Jobs one replica runs at once.")
    worker_lease_seconds: float = Field(
        default=4.0,
        ge=1,
        le=3600,
        description="A job's lease, renewed every quarter of it; if its worker dies (kill -9), another "
        "replica resumes the job after at most this long.",
    )
    worker_stream_watchdog_seconds: float = Field(
        default=20.0,
        ge=1,
        le=3600,
        description="A pipeline stream (fetch, article and story writes) owed progress that makes none for "
        "this long fails the attempt, which is retried.",
    )

"""The API's limits: one rule per request field of the three services (package storywire.v1).

:class:`runtime.validation.Validator` applies them at the edge of every server. A field not listed gets
the defaults (text without control characters up to 65,536 characters, known enum numbers, finite
numbers, at most 100,000 items), so new fields are never unchecked; list a field here to say more.
Semantic rules that need more than one field (a job needs at least one URL, a Synthesize stream starts
with its config) stay in the services.
"""

from __future__ import annotations

from runtime.validation import Dur, Enum, Num, Rep, Rules, Str

__all__ = ["API_RULES"]

ID = Str(128, "line")  # UUIDs, hex digests, lease tokens
NAME = Str(200, "line")  # job names, model names
TOKEN = Str(512, "line")  # page tokens
URL = Str(2048, "url")  # URLs a client asks for
SEEN_URL = Str(8192, "line")  # URLs found in feeds (stored as found, never fetched from here)
HOURS = Num(0, 24 * 366)
PAGE = Num(0, 1000)
COUNT = Num(0, 2**62)
THRESHOLD = Num(0.01, 1.0, zero_ok=True)
TEMPERATURE = Num(0, 2)

_P = "storywire.v1."

API_RULES: Rules = {
    # --- shared messages (common.proto) ---
    _P + "JobSpec": {"urls": Rep(10_000, URL), "name": NAME},
    _P + "JobOptions": {
        "time_window_hours": HOURS,
        "min_articles_per_story": Num(0, 1000),
        "similarity_threshold": THRESHOLD,
        "model": NAME,
        "max_concurrency": Num(0, 1024),
        "max_articles": Num(0, 1_000_000),
        "per_host_concurrency": Num(0, 64),
        "fetch_timeout_seconds": Num(0, 600),
        "max_tokens": Num(0, 32_768),
        "temperature": TEMPERATURE,
    },
    _P + "Article": {
        "id": ID,
        "url": SEEN_URL,
        "canonical_url": SEEN_URL,
        "content_hash": ID,
        "title": Str(4096),
        "text": Str(1_000_000),
        "source_url": SEEN_URL,
        "author": Str(1000, "line"),
    },
    _P + "ArticleBatch": {"articles": Rep(10_000)},
    _P + "Story": {
        "id": ID,
        "job_id": ID,
        "cluster_key": ID,
        "title": Str(4096),
        "summary": Str(100_000),
        "model": NAME,
        "prompt_version": Str(64, "line"),
        "fallback_reason": Str(4096),
        "article_ids": Rep(10_000, ID),
        "latency": Dur(0, 86_400),
        "attempts": Num(0, 1000),
    },
    _P + "StageProgress": {
        "stage": Enum(unspecified_ok=False),
        "done": COUNT,
        "total": COUNT,
        "failed": COUNT,
        "elapsed": Dur(0, 366 * 86_400),
    },
    _P + "TokenUsage": {"prompt_tokens": COUNT, "completion_tokens": COUNT},
    _P + "SynthesisTotals": {
        "llm_calls": COUNT,
        "cache_hits": COUNT,
        "fallbacks": COUNT,
        "grounding_rejections": COUNT,
    },
    # --- store, client API ---
    _P + "SubmitJobRequest": {"idempotency_key": Str(256, "line")},
    _P + "GetJobRequest": {"job_id": ID},
    _P + "ListJobsRequest": {
        "page_size": PAGE,
        "page_token": TOKEN,
        "states": Rep(16, Enum(unspecified_ok=False)),
    },
    _P + "CancelJobRequest": {"job_id": ID, "reason": Str(1000)},
    _P + "WatchJobRequest": {"job_id": ID, "heartbeat_interval": Dur(0.1, 3600)},
    _P + "GetStoryRequest": {"story_id": ID},
    _P + "ListStoriesRequest": {"job_id": ID, "page_size": PAGE, "page_token": TOKEN},
    _P + "BatchGetArticlesRequest": {"article_ids": Rep(1000, ID)},
    # --- store, worker API ---
    _P + "ClaimJobRequest": {
        "worker_id": Str(256, "line"),
        "lease": Dur(0.1, 3600),
        "wait_time": Dur(0, 60),
    },
    _P + "UpdateJobRequest": {
        "job_id": ID,
        "lease_token": ID,
        "stages": Rep(16),
        "error": Str(10_000),
        "trace_id": Str(64, "line"),
        "warnings": Rep(1000, Str(4096)),
        "final_cluster_keys": Rep(1_000_000, ID),
        "left_out": Rep(1_000_000),
        "retry_after": Dur(0, 3600),
    },
    # items checked one by one by the store, which reports each refused item in its WriteResult
    _P + "PutArticlesRequest": {"articles": Rep(10_000, per_item=True), "lease_token": ID},
    _P + "PutStoriesRequest": {"stories": Rep(10_000, per_item=True), "lease_token": ID},
    # --- fetcher (URLs: each bad one is a per-URL FetchError, like any other failing URL) ---
    _P + "FetchRequest": {"urls": Rep(10_000, per_item=True), "job_id": ID},
    _P + "FetchOptions": {
        "time_window_hours": HOURS,
        "max_articles": Num(0, 1_000_000),
        "per_host_concurrency": Num(0, 256),
        "timeout_seconds": Num(0, 600),
        "batch_size": Num(0, 1000),
        "heartbeat_seconds": Num(0, 60),
    },
    # --- synthesizer ---
    _P + "SynthesisConfig": {
        "job_id": ID,
        "similarity_threshold": THRESHOLD,
        "min_articles_per_story": Num(0, 1000),
        "model": NAME,
        "max_concurrency": Num(0, 1024),
        "max_tokens": Num(0, 32_768),
        "temperature": TEMPERATURE,
    },
}

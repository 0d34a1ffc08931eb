"""A resumed job reuses the LLM stories its earlier attempts already stored: a cluster with the same key
has the same articles (the key is a digest of their content hashes), so its stored story is returned
instead of a new LLM call. A stored fallback story is not reused: the cluster gets a new LLM attempt."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence

from storywire.v1 import common_pb2, store_pb2

from runtime.stubs import StoreStub
from services.synthesizer.session import Writer
from services.synthesizer.stories.prompt import SourceArticle
from services.synthesizer.stories.writer import GenParams, StoryResult

PAGE = 1000


def content_key(articles: Sequence[SourceArticle]) -> str:
    """The cluster key of these articles (as clustering computes it from their content hashes)."""
    return hashlib.sha256("\n".join(sorted(a.content_hash for a in articles)).encode()).hexdigest()[:32]


async def stored_llm_stories(store: StoreStub, job_id: str, timeout: float) -> dict[str, common_pb2.Story]:
    """The job's stored stories that an LLM wrote, by cluster key."""
    out: dict[str, common_pb2.Story] = {}
    token = ""
    while True:
        request = store_pb2.ListStoriesRequest(job_id=job_id, page_size=PAGE, page_token=token)
        reply = await store.ListStories(request, timeout=timeout)
        out.update({s.cluster_key: s for s in reply.stories if not s.fallback})
        token = reply.next_page_token
        if not token:
            return out


class ReusingWriter:
    """The engine's writer, except for clusters whose LLM story is already stored for this job.

    It wraps the engine's writer (and so shares its cache, coalescer and limiter) rather than building
    its own: a session's :class:`~services.synthesizer.session.Writer`.
    """

    def __init__(
        self,
        inner: Writer,
        stored: Mapping[str, common_pb2.Story],
        prompt_version: Callable[[], Awaitable[str]],
    ) -> None:
        self.inner = inner
        #: the prompt version the engine's writer uses now (asked per story: it can change mid-job, when
        #: a backend refuses structured output and the writer falls back to the text format)
        self.prompt_version = prompt_version
        self.stored = stored
        self.reused = 0

    async def write(self, articles: Sequence[SourceArticle], params: GenParams) -> StoryResult:
        story = self.stored.get(content_key(articles))
        if (
            story is None
            or story.model != params.model
            or story.prompt_version != await self.prompt_version()
        ):
            return await self.inner.write(articles, params)
        self.reused += 1
        usage = story.usage
        return StoryResult(
            story.title, story.summary, story.model, story.prompt_version, cache_tier="store",
            saved_prompt_tokens=usage.prompt_tokens, saved_completion_tokens=usage.completion_tokens,
        )  # fmt: skip

"""The SynthesizerService gRPC handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from storywire.v1 import common_pb2, synthesizer_pb2, synthesizer_pb2_grpc

from runtime.logging import get_logger
from services.synthesizer.engine import Engine

log = get_logger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]


class BadStreamError(ValueError):
    """The request stream broke the protocol (config first, then articles)."""


def config_problem(c: synthesizer_pb2.SynthesisConfig) -> str | None:
    if c.similarity_threshold != 0 and not 0.01 <= c.similarity_threshold <= 1:
        return f"config.similarity_threshold: {c.similarity_threshold} is outside [0.01, 1]"
    if not 0 <= c.min_articles_per_story <= 1000:
        return f"config.min_articles_per_story: {c.min_articles_per_story} is outside [0, 1000]"
    if not 0 <= c.max_concurrency <= 1024:
        return f"config.max_concurrency: {c.max_concurrency} is outside [0, 1024]"
    if not 0 <= c.max_tokens <= 32768:
        return f"config.max_tokens: {c.max_tokens} is outside [0, 32768]"
    if c.HasField("temperature") and not 0 <= c.temperature <= 2:
        return f"config.temperature: {c.temperature} is outside [0, 2]"
    return None


class SynthesizerServicer(synthesizer_pb2_grpc.SynthesizerServiceServicer):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def Synthesize(
        self, request_iterator: AsyncIterator[synthesizer_pb2.SynthesizeRequest], context: Context
    ) -> AsyncIterator[synthesizer_pb2.SynthesizeResponse]:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("item") != "config":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message must carry `config`")
        problem = config_problem(first.config)
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)

        async def articles() -> AsyncIterator[common_pb2.Article]:
            index = 0
            async for request in request_iterator:
                index += 1
                kind = request.WhichOneof("item")
                if kind == "article":
                    yield request.article
                elif kind == "batch":
                    for article in request.batch.articles:
                        yield article
                elif kind == "config":
                    raise BadStreamError(f"message {index}: only the first message may carry `config`")
                else:
                    raise BadStreamError(f"message {index}: carries neither `article` nor `batch`")

        session = self.engine.session(first.config)
        try:
            async for response in session.run(articles()):
                yield response
        except BadStreamError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        self.engine.record_saved(session.totals.proto)
        log.info(
            "synthesis finished",
            job_id=first.config.job_id,
            articles=session.clusterer.seen,
            clusters=session.clusters,
            retired=session.retired,
            llm_calls=session.totals.proto.llm_calls,
            cache_hits=session.totals.proto.cache_hits,
            fallbacks=session.totals.proto.fallbacks,
        )

    async def GetCacheStats(
        self, request: synthesizer_pb2.GetCacheStatsRequest, context: Context
    ) -> synthesizer_pb2.GetCacheStatsResponse:
        return self.engine.stats()

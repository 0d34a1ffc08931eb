"""The SynthesizerService gRPC handlers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
from storywire.v1 import common_pb2, synthesizer_pb2, synthesizer_pb2_grpc

from runtime.errors import InvalidArgumentError
from runtime.logging import get_logger
from services.synthesizer.engine import Engine

log = get_logger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]


class BadStreamError(InvalidArgumentError):
    """The request stream broke the protocol (config first, then articles)."""

    def __init__(self, reason: str) -> None:
        super().__init__("", reason)


class SynthesizerServicer(synthesizer_pb2_grpc.SynthesizerServiceServicer):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def Synthesize(
        self, request_iterator: AsyncIterator[synthesizer_pb2.SynthesizeRequest], context: Context
    ) -> AsyncIterator[synthesizer_pb2.SynthesizeResponse]:
        # every message is checked at the edge (runtime.rules) as it is read; the protocol here
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("item") != "config":
            raise InvalidArgumentError("", "the first message must carry `config`")

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
        # closed here, in the RPC's task, when the client goes away (the session's LLM work cancelled)
        async with contextlib.aclosing(session.run(articles())) as responses:
            async for response in responses:
                yield response
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

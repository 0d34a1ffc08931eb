"""Typed names for the generated async stubs, and the one place that makes the store's stubs.

mypy-protobuf types ``XStub(aio_channel)`` as ``XAsyncStub``, a class that exists only in the ``.pyi``
files; these aliases give code one name that is right for the type checker and at run time.

The store has two gRPC services on one port: ``StoreService`` (clients) and ``StoreWorkerService``
(the workers' ClaimJob, UpdateJob, PutArticles, PutStories; needs the service token).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from storywire.v1 import fetcher_pb2_grpc, store_pb2_grpc, synthesizer_pb2_grpc

if TYPE_CHECKING:
    StoreStub = store_pb2_grpc.StoreServiceAsyncStub
    StoreWorkerStub = store_pb2_grpc.StoreWorkerServiceAsyncStub
    FetcherStub = fetcher_pb2_grpc.FetcherServiceAsyncStub
    SynthesizerStub = synthesizer_pb2_grpc.SynthesizerServiceAsyncStub

    class StoreAllStub(StoreStub, StoreWorkerStub):
        def __init__(self, channel: grpc.aio.Channel) -> None: ...

else:
    StoreStub = store_pb2_grpc.StoreServiceStub
    StoreWorkerStub = store_pb2_grpc.StoreWorkerServiceStub
    FetcherStub = fetcher_pb2_grpc.FetcherServiceStub
    SynthesizerStub = synthesizer_pb2_grpc.SynthesizerServiceStub

    class StoreAllStub:
        """Both store APIs on one channel, for tools and tests that play client and worker."""

        def __init__(self, channel: grpc.aio.Channel) -> None:
            vars(self).update(vars(store_pb2_grpc.StoreServiceStub(channel)))
            vars(self).update(vars(store_pb2_grpc.StoreWorkerServiceStub(channel)))


def store_stub(channel: grpc.aio.Channel) -> StoreStub:
    """The store's client API on ``channel``."""
    return store_pb2_grpc.StoreServiceStub(channel)


def store_worker_stub(channel: grpc.aio.Channel) -> StoreWorkerStub:
    """The store's worker API on ``channel`` (the channel must carry the service token)."""
    return store_pb2_grpc.StoreWorkerServiceStub(channel)


__all__ = [
    "FetcherStub",
    "StoreAllStub",
    "StoreStub",
    "StoreWorkerStub",
    "SynthesizerStub",
    "store_stub",
    "store_worker_stub",
]

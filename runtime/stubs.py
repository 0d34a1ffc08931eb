"""Typed names for the generated async stubs.

mypy-protobuf types ``XStub(aio_channel)`` as ``XAsyncStub``, a class that exists only in the ``.pyi``
files; these aliases give code one name that is right for the type checker and at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from storywire.v1 import fetcher_pb2_grpc, store_pb2_grpc, synthesizer_pb2_grpc

if TYPE_CHECKING:
    StoreStub = store_pb2_grpc.StoreServiceAsyncStub
    FetcherStub = fetcher_pb2_grpc.FetcherServiceAsyncStub
    SynthesizerStub = synthesizer_pb2_grpc.SynthesizerServiceAsyncStub
else:
    StoreStub = store_pb2_grpc.StoreServiceStub
    FetcherStub = fetcher_pb2_grpc.FetcherServiceStub
    SynthesizerStub = synthesizer_pb2_grpc.SynthesizerServiceStub

__all__ = ["FetcherStub", "StoreStub", "SynthesizerStub"]

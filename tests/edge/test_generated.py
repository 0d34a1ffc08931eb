"""Requests generated from the proto descriptors, sent as raw bytes to every RPC of the three services on
real servers: random field values, wrong wire types, oversized strings, unknown enum numbers, invalid
UTF-8, corrupt bytes, and well-typed messages with ordinary values that reach the handlers. None may
end in UNKNOWN (gRPC's answer to an exception nobody mapped).

The generator is seeded, so a failure names a request that can be replayed.
"""

from __future__ import annotations

import asyncio
import random
import struct
import uuid
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from storywire.v1 import fetcher_pb2, store_pb2, synthesizer_pb2

from devtools.services import dev_channel
from tests.edge.conftest import Servers

pytestmark = pytest.mark.integration

SERVICES = {
    "store": [store_pb2.DESCRIPTOR.services_by_name[n] for n in ("StoreService", "StoreWorkerService")],
    "fetcher": [fetcher_pb2.DESCRIPTOR.services_by_name["FetcherService"]],
    "synthesizer": [synthesizer_pb2.DESCRIPTOR.services_by_name["SynthesizerService"]],
}
PER_METHOD = 40
CALL_TIMEOUT = 10.0
# the fetcher resolves host names: only hosts that never leave the machine, or none at all
URLS = [
    "http://127.0.0.1:9/feed",
    "http://[::1]:9/x",
    "https://127.0.0.1:1/\r\nHost: x",
    "ftp://127.0.0.1/",
    "http:///nohost",
    "http://127.0.0.1:99999/",
    "not a url",
    "",
    "http://127.0.0.1/\x00",
]


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


class Generator:
    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)

    def string(self, name: str) -> bytes:  # noqa: PLR0911 - one return per kind
        r = self.rnd
        if "url" in name and r.random() < 0.7:
            return r.choice(URLS).encode()
        kind = r.randrange(8)
        if kind == 0:
            return b"x" * r.choice([257, 2049, 70_000, 1_100_000])
        if kind == 1:
            return bytes(r.randrange(256) for _ in range(r.randrange(1, 20)))  # often invalid UTF-8
        if kind == 2:
            return "".join(chr(r.randrange(0, 0x20)) for _ in range(r.randrange(1, 5))).encode()
        if kind == 3:
            return b"0b1c3a52-3f39-4f0e-8d58-2b8f1f9d2a10"
        if kind == 4:
            return "".join(chr(r.randrange(0x20, 0x2FFF)) for _ in range(r.randrange(0, 30))).encode(
                "utf-8", "surrogatepass"
            )
        return r.choice([b"", b"a", b"worker-1", b"\xed\xa0\x80", "é".encode()])

    def number(self) -> int:
        return self.rnd.choice([0, 1, -1, 2, 7, 99, 1000, 1001, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63)])

    def double(self) -> bytes:
        value = self.rnd.choice([0.0, 0.5, 1.0, -1.0, 3.0, 1e308, float("nan"), float("inf"), -float("inf")])
        return struct.pack("<d", value)

    def field(self, field: FieldDescriptor, depth: int) -> bytes:  # noqa: PLR0911 - one per wire type
        r = self.rnd
        number = field.number
        if r.random() < 0.08:  # the wrong wire type for this field
            wire = r.choice([0, 1, 2, 5])
            payload = {0: _varint(self.number()), 1: b"\x00" * 8, 5: b"\x00" * 4}.get(
                wire, _varint(3) + b"\xff\xfe\x00"
            )
            return _key(number, wire) + payload
        t = field.type
        if t == FieldDescriptor.TYPE_STRING:
            data = self.string(field.name)
            return _key(number, 2) + _varint(len(data)) + data
        if t == FieldDescriptor.TYPE_BYTES:
            data = self.string(field.name)
            return _key(number, 2) + _varint(len(data)) + data
        if t == FieldDescriptor.TYPE_DOUBLE:
            return _key(number, 1) + self.double()
        if t == FieldDescriptor.TYPE_FLOAT:
            return _key(number, 5) + struct.pack("<f", r.choice([0.0, 1.5, float("nan")]))
        if t == FieldDescriptor.TYPE_BOOL:
            return _key(number, 0) + _varint(r.choice([0, 1, 2]))
        if t == FieldDescriptor.TYPE_ENUM:
            return _key(number, 0) + _varint(r.choice([0, 1, 2, 5, 7, 99, -1]))
        if field.message_type is not None:
            data = self.message(field.message_type, depth + 1)
            return _key(number, 2) + _varint(len(data)) + data
        return _key(number, 0) + _varint(self.number())

    def message(self, descriptor: Descriptor, depth: int = 0) -> bytes:
        r = self.rnd
        if depth > 4:
            return b""
        out = bytearray()
        for field in descriptor.fields:
            if r.random() < 0.45:
                continue
            repeats = r.choice([1, 1, 2, 3]) if field.is_repeated else 1
            for _ in range(repeats):
                out += self.field(field, depth)
        if depth == 0 and r.random() < 0.05:
            out += bytes([r.randrange(256) for _ in range(r.randrange(1, 8))])  # trailing garbage
        return bytes(out)


def plausible(descriptor: Descriptor, rnd: random.Random, depth: int = 0) -> Message:
    """A well-typed message with ordinary values (ids, loopback URLs, small numbers, known enums), so
    that requests also get past validation into the handlers."""
    message = GetMessageClass(descriptor)()
    for field in descriptor.fields:
        if rnd.random() < 0.3 or (field.message_type is not None and depth > 2):
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field, value_field = (field.message_type.fields_by_name[n] for n in ("key", "value"))
            entries = getattr(message, field.name)
            for _ in range(rnd.choice([1, 2])):
                entries[_plausible_value(key_field, rnd, depth)] = _plausible_value(value_field, rnd, depth)
            continue
        value = _plausible_value(field, rnd, depth)
        if field.is_repeated:
            getattr(message, field.name).extend([value] * rnd.choice([1, 2]))
        elif field.message_type is not None:
            getattr(message, field.name).CopyFrom(value)
        else:
            setattr(message, field.name, value)
    return message


def _plausible_value(field: FieldDescriptor, rnd: random.Random, depth: int) -> Any:  # noqa: PLR0911
    if field.message_type is not None:
        if field.message_type.full_name in ("google.protobuf.Duration", "google.protobuf.Timestamp"):
            return GetMessageClass(field.message_type)(seconds=rnd.choice([0, 1, 5]))
        return plausible(field.message_type, rnd, depth + 1)
    if field.type == FieldDescriptor.TYPE_STRING:
        if "url" in field.name:
            return "http://127.0.0.1:9/feed.xml"  # the fetcher's guard refuses it before connecting
        if field.name.endswith("id"):
            return str(uuid.UUID(int=rnd.getrandbits(128)))
        return rnd.choice(["a", "worker-1", "Harbour news", "k1"])
    if field.type == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
        return rnd.choice(list(field.enum_type.values_by_number)[1:] or [0])
    if field.type == FieldDescriptor.TYPE_BOOL:
        return rnd.random() < 0.5
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return rnd.choice([0.0, 0.5, 1.0])
    if field.type == FieldDescriptor.TYPE_BYTES:
        return b"x"
    return rnd.choice([0, 1, 2, 10])


def requests(method: MethodDescriptor, gen: Generator) -> list[bytes]:
    """One request message, or for a client stream 0 to 3 of them: hostile bytes mostly, and one in
    four a plausible message (Synthesize streams then start with a config, as they must)."""
    count = gen.rnd.choice([0, 1, 2, 3]) if method.client_streaming else 1
    if gen.rnd.random() < 0.75:
        return [gen.message(method.input_type) for _ in range(count)]
    out = [plausible(method.input_type, gen.rnd) for _ in range(count)]
    if out and method.input_type.oneofs:  # one member of the oneof, the config first
        out = [
            type(m)(**{f.name: getattr(m, f.name)})
            for m, f in zip(out, _members(method.input_type, len(out)), strict=True)
        ]
    return [m.SerializeToString() for m in out]


def _members(descriptor: Descriptor, count: int) -> list[FieldDescriptor]:
    fields = descriptor.oneofs[0].fields
    return [fields[0], *([fields[1]] * (count - 1))]


async def call(
    channel: grpc.aio.Channel, method: MethodDescriptor, messages: list[bytes], unknown_fails: bool = True
) -> grpc.StatusCode:
    """The status of one call; UNKNOWN fails the test naming the request (unless not ``unknown_fails``)."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    try:
        if method.client_streaming:

            async def stream() -> AsyncIterator[bytes]:
                for message in messages:
                    yield message

            if method.server_streaming:
                both: grpc.aio.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(path)
                async for _ in both(stream(), timeout=CALL_TIMEOUT):
                    pass
            else:
                upload: grpc.aio.StreamUnaryMultiCallable[bytes, bytes] = channel.stream_unary(path)
                await upload(stream(), timeout=CALL_TIMEOUT)
        elif method.server_streaming:
            download: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(path)
            async for _ in download(messages[0], timeout=CALL_TIMEOUT):
                pass
        else:
            unary: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(path)
            await unary(messages[0], timeout=CALL_TIMEOUT)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNKNOWN and unknown_fails:
            shown = [m[:200] for m in messages]
            raise AssertionError(f"{path}: UNKNOWN for {shown!r}: {exc.details()}") from None
        return exc.code()
    return grpc.StatusCode.OK


async def send_generated(servers: Servers, unknown_fails: bool = True) -> dict[str, Counter[str]]:
    """PER_METHOD generated requests to every RPC (seeded by its name): the status names per RPC."""
    codes: dict[str, Counter[str]] = {}
    for service, descriptors in SERVICES.items():
        async with dev_channel(servers.address(service)) as channel:
            for descriptor in descriptors:
                for method in descriptor.methods:
                    gen = Generator(zlib.crc32(method.full_name.encode()))
                    batch = [requests(method, gen) for _ in range(PER_METHOD)]
                    results = await asyncio.gather(*(call(channel, method, m, unknown_fails) for m in batch))
                    codes[method.full_name] = Counter(code.name for code in results)
    return codes


@pytest.mark.timeout(600)
async def test_generated_requests_never_get_unknown(servers: Servers) -> None:
    codes = await send_generated(servers)
    sent = sum(sum(c.values()) for c in codes.values())
    rpcs = sum(len(d.methods) for ds in SERVICES.values() for d in ds)
    assert len(codes) == rpcs == 15
    assert sent >= 500
    # the generator reaches the handlers too, not only the validation
    assert any(c["OK"] for c in codes.values()), codes
    assert sum(c["INVALID_ARGUMENT"] for c in codes.values()) > sent // 4, codes

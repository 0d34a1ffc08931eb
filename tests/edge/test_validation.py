"""Hostile requests answered cleanly at the edge of real servers: INVALID_ARGUMENT naming the field, never
UNKNOWN, never the text of an internal exception."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from storywire.v1 import (
    common_pb2,
    fetcher_pb2,
    fetcher_pb2_grpc,
    store_pb2,
    synthesizer_pb2,
    synthesizer_pb2_grpc,
)

from devtools.services import dev_channel
from runtime.stubs import FetcherStub, StoreAllStub, SynthesizerStub
from tests.edge.conftest import Servers

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(servers: Servers) -> AsyncIterator[StoreAllStub]:
    async with dev_channel(servers.address("store")) as channel:
        yield StoreAllStub(channel)


def job(*urls: str, name: str = "edge") -> store_pb2.SubmitJobRequest:
    return store_pb2.SubmitJobRequest(
        spec=common_pb2.JobSpec(urls=list(urls) or ["https://a.example/f"], name=name)
    )


#: malformed submissions and the INVALID_ARGUMENT message each must get (also sent by the fault suite)
BAD_SUBMISSIONS = [
    (job(name="a\x00b"), "spec.name: contains the control character U+0000 at position 1"),
    (
        job("https://a.example/\x00x"),
        "spec.urls[0]: contains the control character U+0000 at position 18",
    ),
    (
        job("https://a.example/x\r\nHost: evil"),
        "spec.urls[0]: contains the control character U+000D at position 19",
    ),
    (
        job("https://a.example/ok", "http://b.example/\n"),
        "spec.urls[1]: contains the control character U+000A at position 17",
    ),
    (
        store_pb2.SubmitJobRequest(spec=job().spec, idempotency_key="k" * 1_000_000),
        "idempotency_key: is longer than 256 characters (1000000)",
    ),
    (
        job("https://a.example:99999/"),
        "spec.urls[0]: 'https://a.example:99999/' does not parse (Port out of range 0-65535)",
    ),
]
#: URLs with control characters, refused per URL by the fetcher without any connection
CONTROL_CHARACTER_URLS = ["http://127.0.0.1:9/a\r\nX-Injected: 1", "http://127.0.0.1:9/\x00", "gopher://x/"]


async def refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value


@pytest.mark.parametrize(("request_", "message"), BAD_SUBMISSIONS)
async def test_bad_submissions_are_invalid_argument_naming_the_field(
    store: StoreAllStub, request_: store_pb2.SubmitJobRequest, message: str
) -> None:
    error = await refused(store.SubmitJob(request_))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == message


async def test_unknown_enum_number_in_a_filter(store: StoreAllStub) -> None:
    error = await refused(store.ListJobs(store_pb2.ListJobsRequest(states=[99])))  # type: ignore[list-item]
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "states[0]: 99 is not a known JobState",
    )


async def test_invalid_utf8_on_the_wire_names_the_field(servers: Servers) -> None:
    good = job(name="NAME").SerializeToString()
    broken = good.replace(b"NAME", b"N\xff\xfeE")
    async with dev_channel(servers.address("store")) as channel:
        submit: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/storywire.v1.StoreService/SubmitJob"
        )
        error = await refused(submit(broken))
        corrupt = await refused(submit(b"\x0a\xff\xff\xff\xff\x0f"))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "spec.name: is not valid UTF-8",
    )
    assert corrupt.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "is not a valid storywire.v1.SubmitJobRequest message" in (corrupt.details() or "")


async def test_urls_are_normalised(store: StoreAllStub) -> None:
    reply = await store.SubmitJob(job("HTTPS://News.Example.COM:443/feed.xml?a=1#top", "http://[::1]:8080"))
    assert list(reply.job.spec.urls) == ["https://news.example.com/feed.xml?a=1", "http://[::1]:8080/"]


async def test_negative_lease_and_worker_fields(store: StoreAllStub) -> None:
    error = await refused(
        store.ClaimJob(store_pb2.ClaimJobRequest(worker_id="w", lease=Duration(seconds=-5)))
    )
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "lease: -5 s is outside [0.1, 3600] s",
    )
    error = await refused(store.ClaimJob(store_pb2.ClaimJobRequest(worker_id="w\x07")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("worker_id: contains the control character U+0007")


async def test_internal_errors_carry_an_id_and_never_the_exception_text(
    servers: Servers, store: StoreAllStub, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    service = servers.store.service
    assert hasattr(service, "jobs")

    async def broken(job_id: str) -> common_pb2.Job:
        raise RuntimeError(f"secret internals of {job_id}")

    monkeypatch.setattr(service.jobs, "get", broken)
    caplog.set_level(logging.ERROR)
    error = await refused(
        store.GetJob(store_pb2.GetJobRequest(job_id="0b1c3a52-3f39-4f0e-8d58-2b8f1f9d2a10"))
    )
    assert error.code() == grpc.StatusCode.INTERNAL
    details = error.details() or ""
    assert "secret" not in details
    assert "RuntimeError" not in details
    found = re.search(r"error id ([0-9a-f]{16})", details)
    assert found, details
    logged = [r for r in caplog.records if found.group(1) in r.getMessage()]
    assert logged
    assert "secret internals" in (logged[0].exc_text or "") + logged[0].getMessage()


async def test_fetcher_refuses_control_characters_per_url_without_fetching(servers: Servers) -> None:
    async with dev_channel(servers.address("fetcher")) as channel:
        stub: FetcherStub = fetcher_pb2_grpc.FetcherServiceStub(channel)
        urls = CONTROL_CHARACTER_URLS
        replies = [r async for r in stub.Fetch(fetcher_pb2.FetchRequest(urls=urls))]
    errors = {r.error.url: r.error for r in replies if r.WhichOneof("item") == "error"}
    assert set(errors) == set(urls)
    assert {e.code for e in errors.values()} == {common_pb2.FETCH_ERROR_CODE_INVALID_URL}
    assert "U+000D" in errors[urls[0]].detail
    assert replies[-1].summary.urls_failed == 3


async def test_fetcher_option_out_of_range(servers: Servers) -> None:
    async with dev_channel(servers.address("fetcher")) as channel:
        stub: FetcherStub = fetcher_pb2_grpc.FetcherServiceStub(channel)
        request = fetcher_pb2.FetchRequest(
            urls=["http://a/"], options=fetcher_pb2.FetchOptions(timeout_seconds=float("nan"))
        )
        error = await refused(anext(aiter(stub.Fetch(request))))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "options.timeout_seconds: nan is not a finite number",
    )


async def test_synthesizer_names_the_bad_field_of_a_streamed_article(servers: Servers) -> None:
    async def requests() -> AsyncIterator[synthesizer_pb2.SynthesizeRequest]:
        yield synthesizer_pb2.SynthesizeRequest(config=synthesizer_pb2.SynthesisConfig(job_id="j"))
        yield synthesizer_pb2.SynthesizeRequest(article=common_pb2.Article(id="a", title="ok"))
        yield synthesizer_pb2.SynthesizeRequest(article=common_pb2.Article(id="b", title="bad\x00"))

    async with dev_channel(servers.address("synthesizer")) as channel:
        stub: SynthesizerStub = synthesizer_pb2_grpc.SynthesizerServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in stub.Synthesize(requests()):
                pass
    assert (info.value.code(), info.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "stream[2].article.title: contains the control character U+0000 at position 3",
    )


def test_map_fields_are_checked_key_by_key_and_value_by_value() -> None:
    """SynthesisTotals.rejection_reasons (a map) reaches the store inside UpdateJob: valid entries pass,
    a key with a control character is refused with the field named."""
    from runtime.errors import InvalidArgumentError
    from runtime.rules import API_RULES
    from runtime.validation import Validator

    validator = Validator(API_RULES)
    good = store_pb2.UpdateJobRequest(job_id="j", lease_token="t")
    good.totals.rejection_reasons["mixed_facts"] = 3
    validator.check(good)
    bad = store_pb2.UpdateJobRequest(job_id="j", lease_token="t")
    bad.totals.rejection_reasons["bad\x00key"] = 1
    with pytest.raises(InvalidArgumentError, match="rejection_reasons"):
        validator.check(bad)

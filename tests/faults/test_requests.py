"""Hostile requests as fault-table rows, reusing the request sets of the edge and fetcher suites (not
copies of them): the malformed submissions and the requests generated from the proto descriptors, sent
to real servers on loopback (none may get UNKNOWN), and the hostile feed URLs in one job, each of which
must get its own precise error, with the fetcher's resident memory before and after."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import grpc
import pytest
from storywire.v1 import common_pb2

from devtools.services import ServiceProcess, dev_channel
from runtime.stubs import StoreAllStub
from tests.edge.conftest import Servers, servers
from tests.edge.test_fetcher_faults import MB, fetch, rss
from tests.edge.test_generated import send_generated
from tests.edge.test_validation import BAD_SUBMISSIONS, CONTROL_CHARACTER_URLS
from tests.faults.record import FaultRow, record
from tests.fetcher.hostile import Hostile, hostile_cases
from tests.fetcher.test_fetch import SSRF_CASES, hostile
from tests.helpers import serving_process

__all__ = ["hostile", "servers"]  # fixtures

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def counted(codes: Counter[str]) -> str:
    return ", ".join(f"{name} x{n}" for name, n in codes.most_common())


async def test_malformed_and_generated_requests_never_get_unknown(servers: Servers) -> None:
    made: Counter[str] = Counter()
    async with dev_channel(servers.address("store")) as channel:
        store = StoreAllStub(channel)
        for request, _ in BAD_SUBMISSIONS:
            try:
                await store.SubmitJob(request, timeout=30)
                made["OK"] += 1
            except grpc.aio.AioRpcError as exc:
                made[exc.code().name] += 1
    per_rpc = await send_generated(servers, unknown_fails=False)
    generated = sum(per_rpc.values(), Counter[str]())
    total = made + generated
    record(
        FaultRow(
            case=f"{sum(made.values())} malformed and {sum(generated.values())} generated requests "
            f"to the {len(per_rpc)} RPCs",
            outcome=counted(total),
            notes=f"UNKNOWN x{total['UNKNOWN']}; malformed (tests/edge/test_validation.py BAD_SUBMISSIONS): "
            f"{counted(made)}; generated (tests/edge/test_generated.py): {counted(generated)}",
        )
    )
    assert total["UNKNOWN"] == 0, {rpc: c for rpc, c in per_rpc.items() if c["UNKNOWN"]}
    assert made == Counter({"INVALID_ARGUMENT": len(BAD_SUBMISSIONS)})
    assert generated["INVALID_ARGUMENT"] > sum(generated.values()) // 4


@pytest.fixture
async def fetcher() -> AsyncIterator[ServiceProcess]:
    # the slowloris ends at 3 s instead of the default 20 s (tests/fetcher/test_defaults.py covers it)
    env = {"STORYWIRE_FETCH_ALLOW_NETWORKS": "127.0.0.1/32", "STORYWIRE_FETCH_TIMEOUT_SECONDS": "3"}
    async with serving_process("fetcher", env) as proc:
        yield proc


async def test_hostile_feeds_each_get_a_precise_error(fetcher: ServiceProcess, hostile: Hostile) -> None:
    expected = {
        **hostile_cases(hostile.base),
        # a redirect to a loopback address outside the allow-list: reported under the submitted URL
        f"{hostile.base}/to-other-loopback": common_pb2.FETCH_ERROR_CODE_BLOCKED_ADDRESS,
        # the SSRF targets that the allow-list (127.0.0.1/32) does not open
        **{url: code for url, code in SSRF_CASES if "127.0.0.1" not in url and "localhost" not in url},
        **dict.fromkeys(CONTROL_CHARACTER_URLS, common_pb2.FETCH_ERROR_CODE_INVALID_URL),
    }
    good = f"{hostile.base}/good.xml"
    warm = await fetch(fetcher, [good])  # imports, parsers and pools warmed up once
    assert warm[-1].summary.articles == 2
    before = rss(fetcher)
    loop = asyncio.get_running_loop()
    started = loop.time()
    replies = await fetch(fetcher, [good, *expected])
    seconds = loop.time() - started
    after = rss(fetcher)
    errors = {r.error.url: r.error for r in replies if r.WhichOneof("item") == "error"}
    precise = {url for url, code in expected.items() if url in errors and errors[url].code == code}
    codes = Counter(
        common_pb2.FetchErrorCode.Name(e.code).removeprefix("FETCH_ERROR_CODE_") for e in errors.values()
    )
    record(
        FaultRow(
            case=f"{len(expected)} hostile feed URLs in one fetch, with a good feed",
            outcome=f"{len(precise)} of {len(expected)} URLs got their precise error; the good feed streamed",
            notes=f"{counted(codes)}; {seconds:.1f} s (fetch timeout 3 s); fetcher RSS {before / MB:.0f} MB "
            f"before, {after / MB:.0f} MB after",
        )
    )
    assert set(errors) == set(expected), "one error per hostile URL, under the URL that was submitted"
    assert precise == set(expected), {u: (e.code, e.detail) for u, e in errors.items() if u not in precise}
    assert sum(r.WhichOneof("item") == "article" for r in replies) == 2
    assert replies[-1].summary.urls_failed == len(expected)
    assert after - before < 40 * MB, (before / MB, after / MB)

"""The end-to-end job once more with TLS on every endpoint and both tokens: the client (and the CLI, and
the health probe) with the client token, the worker with the service token."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from pydantic import SecretStr
from storywire.v1 import common_pb2, store_pb2

from runtime.client import ClientSecurity, open_channel
from runtime.stubs import StoreStub, store_stub
from tests.e2e.conftest import Deployment, deploy
from tests.tls import make_certs

pytestmark = pytest.mark.integration
CLIENT_TOKEN, SERVICE_TOKEN = "e2e-client-token", "e2e-service-token"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
async def secure(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    certs = make_certs(tmp_path_factory.mktemp("e2e-tls"))
    env = {
        "STORYWIRE_TLS_CERT_FILE": str(certs.cert),
        "STORYWIRE_TLS_KEY_FILE": str(certs.key),
        "STORYWIRE_TLS_CA_FILE": str(certs.ca),
        "STORYWIRE_CLIENT_TOKEN": CLIENT_TOKEN,
        "STORYWIRE_SERVICE_TOKEN": SERVICE_TOKEN,
    }
    client = ClientSecurity(ca_file=str(certs.ca), token=SecretStr(CLIENT_TOKEN))
    async with deploy(env, client) as running:
        yield running


async def test_job_end_to_end_over_tls_with_tokens(secure: Deployment) -> None:
    address = secure.env["STORYWIRE_STORE_ADDRESS"]
    async with open_channel(address, security=secure.security) as channel:
        store: StoreStub = store_stub(channel)
        spec = common_pb2.JobSpec(urls=secure.urls(), name="secure e2e")
        job = (await store.SubmitJob(store_pb2.SubmitJobRequest(spec=spec))).job

        async def until_final() -> common_pb2.Job:
            last = job
            async for event in store.WatchJob(store_pb2.WatchJobRequest(job_id=job.id)):
                if event.WhichOneof("event") == "snapshot":
                    last = event.snapshot
            return last

        final = await asyncio.wait_for(until_final(), 90)
        assert final.state == common_pb2.JOB_STATE_DONE, final.error
        stories = await store.ListStories(store_pb2.ListStoriesRequest(job_id=job.id, page_size=100))
        assert len(stories.stories) == 14
        assert all(not s.fallback for s in stories.stories)

    # the same store, dialled without TLS, or over TLS without the token, serves nothing
    plain = ClientSecurity(token=SecretStr(CLIENT_TOKEN))
    no_token = ClientSecurity(ca_file=secure.security.ca_file)
    for security, code in [(plain, grpc.StatusCode.UNAVAILABLE), (no_token, grpc.StatusCode.UNAUTHENTICATED)]:
        async with open_channel(address, security=security) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await store_stub(channel).GetJob(store_pb2.GetJobRequest(job_id=job.id), timeout=5)
            assert info.value.code() == code


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


async def test_cli_and_health_probe_read_tls_and_token_from_the_environment(secure: Deployment) -> None:
    address = secure.env["STORYWIRE_STORE_ADDRESS"]
    async with open_channel(address, security=secure.security) as channel:
        spec = common_pb2.JobSpec(urls=secure.urls()[:1], name="listed over tls")
        await store_stub(channel).SubmitJob(store_pb2.SubmitJobRequest(spec=spec))
    env = {
        **os.environ,
        "STORYWIRE_TLS_CA_FILE": secure.security.ca_file,
        "STORYWIRE_CLIENT_TOKEN": CLIENT_TOKEN,
        "STORYWIRE_SERVICE_TOKEN": "",
    }
    probe = await asyncio.to_thread(run, [sys.executable, "-m", "runtime.healthcheck", address], env)
    assert (probe.returncode, probe.stdout.strip()) == (0, "SERVING"), probe.stderr
    # as the image's HEALTHCHECK runs it: no address, the port from the environment, on localhost
    port_env = {**env, "STORYWIRE_HEALTH_PORT": address.rsplit(":", 1)[1]}
    probe = await asyncio.to_thread(run, [sys.executable, "-m", "runtime.healthcheck"], port_env)
    assert (probe.returncode, probe.stdout.strip()) == (0, "SERVING"), probe.stderr
    jobs = await asyncio.to_thread(
        run, [sys.executable, "-m", "cli", "jobs", "--store", address, "--json"], env
    )
    assert jobs.returncode == 0, jobs.stderr
    assert "listed over tls" in jobs.stdout

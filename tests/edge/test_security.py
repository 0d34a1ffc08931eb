"""Who may call what: the workers' API refuses plain clients by default, client tokens, TLS, the bind
rule for non-loopback addresses, ports in use, and secrets kept out of logs."""

from __future__ import annotations

import asyncio
import socket

import grpc
import pytest
from grpc_health.v1 import health_pb2
from pydantic import SecretStr
from storywire.v1 import common_pb2, store_pb2

from devtools.services import ServiceProcess
from devtools.stack import StackInfo
from devtools.stack.proc import free_port
from runtime.client import ClientSecurity, open_channel
from runtime.security import check_bind
from runtime.server import BindError, ServerHandle, start_server
from runtime.settings import SettingsError, load_settings, shown_secret
from runtime.stubs import StoreAllStub
from services.fetcher.service import FetcherService
from services.fetcher.settings import FetcherSettings
from services.store.service import StoreService
from services.store.settings import StoreSettings
from tests.edge.conftest import Certs
from tests.helpers import fresh_database, health_status, wait_serving

pytestmark = pytest.mark.integration
CLIENT, SERVICE = "client-token-for-tests", "service-token-for-tests"
SPEC = common_pb2.JobSpec(urls=["https://a.example/feed"], name="security")


@pytest.fixture(scope="module")
async def dsn(stack: StackInfo) -> str:
    return await fresh_database(stack)


async def store_with(dsn: str, **settings: object) -> ServerHandle:
    config = load_settings(
        StoreSettings,
        database_url=dsn,
        store_port=0,
        log_format="console",
        shutdown_grace_seconds=1,
        **settings,
    )
    return await start_server(StoreService(config), config, 0)


def as_client(token: str = "", ca: str = "") -> ClientSecurity:
    return ClientSecurity(ca_file=ca, token=SecretStr(token))


async def code_of(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


CLAIM = store_pb2.ClaimJobRequest(worker_id="intruder")


async def test_plain_client_cannot_claim_jobs_with_default_settings(dsn: str) -> None:
    handle = await store_with(dsn)  # the defaults: no service token configured
    try:
        await wait_serving(handle.address)
        async with open_channel(handle.address, security=as_client()) as channel:
            store = StoreAllStub(channel)
            job = (await store.SubmitJob(store_pb2.SubmitJobRequest(spec=SPEC))).job  # clients may submit
            assert await code_of(store.ClaimJob(CLAIM)) == grpc.StatusCode.PERMISSION_DENIED
            for write in (store.PutArticles, store.PutStories):
                assert await code_of(write(iter([]))) == grpc.StatusCode.PERMISSION_DENIED
            update = store_pb2.UpdateJobRequest(job_id=job.id, state=common_pb2.JOB_STATE_FAILED)
            assert await code_of(store.UpdateJob(update)) == grpc.StatusCode.PERMISSION_DENIED
        async with open_channel(handle.address, security=as_client("a-guess")) as channel:
            assert await code_of(StoreAllStub(channel).ClaimJob(CLAIM)) == grpc.StatusCode.PERMISSION_DENIED
            got = await StoreAllStub(channel).GetJob(store_pb2.GetJobRequest(job_id=job.id))
            assert got.job.state == common_pb2.JOB_STATE_QUEUED  # nobody claimed it
    finally:
        await handle.stop()


async def test_tokens_decide_who_submits_and_who_works(dsn: str) -> None:
    handle = await store_with(dsn, client_token=CLIENT, service_token=SERVICE)
    try:
        await wait_serving(handle.address)  # health needs no token (probes)
        submit = store_pb2.SubmitJobRequest(spec=SPEC)
        for token, code in [
            ("", "UNAUTHENTICATED"),
            ("wrong", "UNAUTHENTICATED"),
            (CLIENT, "OK"),
            (SERVICE, "OK"),
        ]:
            async with open_channel(handle.address, security=as_client(token)) as channel:
                assert (await code_of(StoreAllStub(channel).SubmitJob(submit))).name == code, token
        for token, code in [("", "UNAUTHENTICATED"), (CLIENT, "PERMISSION_DENIED"), (SERVICE, "OK")]:
            async with open_channel(handle.address, security=as_client(token)) as channel:
                assert (await code_of(StoreAllStub(channel).ClaimJob(CLAIM))).name == code, token
    finally:
        await handle.stop()


async def test_tls_with_tokens(dsn: str, certs: Certs) -> None:
    handle = await store_with(
        dsn,
        tls_cert_file=str(certs.cert),
        tls_key_file=str(certs.key),
        client_token=CLIENT,
        service_token=SERVICE,
    )
    try:
        secure = as_client(CLIENT, str(certs.ca))
        await wait_serving(handle.address, security=secure)
        async with open_channel(handle.address, security=secure) as channel:
            reply = await StoreAllStub(channel).SubmitJob(store_pb2.SubmitJobRequest(spec=SPEC))
            assert reply.job.state == common_pb2.JOB_STATE_QUEUED
        for wrong in (as_client(CLIENT), as_client(CLIENT, str(certs.other_ca))):  # plaintext, other CA
            async with open_channel(handle.address, security=wrong) as channel:
                call = StoreAllStub(channel).SubmitJob(store_pb2.SubmitJobRequest(spec=SPEC), timeout=5)
                assert await code_of(call) == grpc.StatusCode.UNAVAILABLE
    finally:
        await handle.stop()


def test_non_loopback_bind_needs_tls_and_tokens_or_insecure(certs: Certs) -> None:
    with pytest.raises(SettingsError) as info:
        check_bind(load_settings(FetcherSettings, bind_host="0.0.0.0"))
    message = str(info.value)
    assert "refusing to bind 0.0.0.0" in message
    assert "STORYWIRE_TLS_CERT_FILE" in message
    assert "STORYWIRE_CLIENT_TOKEN" in message
    assert "STORYWIRE_SERVICE_TOKEN" in message
    check_bind(load_settings(FetcherSettings, bind_host="0.0.0.0", insecure=True))
    check_bind(
        load_settings(
            FetcherSettings,
            bind_host="0.0.0.0",
            tls_cert_file=str(certs.cert),
            tls_key_file=str(certs.key),
            client_token=CLIENT,
            service_token=SERVICE,
        )
    )


def test_service_refuses_to_start_on_a_public_address_without_tls() -> None:
    proc = ServiceProcess("fetcher", env={"STORYWIRE_BIND_HOST": "0.0.0.0"}).start()
    code, output = proc.wait(timeout=60)
    assert code == 2
    assert "refusing to bind 0.0.0.0" in output
    assert "Traceback" not in output


def test_port_in_use_is_a_clear_error_not_a_traceback() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = ServiceProcess("fetcher", port=port).start()
        code, output = proc.wait(timeout=60)
    assert code == 1
    assert f"cannot bind 127.0.0.1:{port}: the port is already in use by another process" in output
    assert "Traceback" not in output
    assert "RuntimeError" not in output


async def test_second_server_cannot_share_a_port() -> None:
    settings = load_settings(FetcherSettings, fetcher_port=0, log_format="console", shutdown_grace_seconds=0)
    first = await start_server(FetcherService(settings), settings, 0)
    try:
        with pytest.raises(BindError, match="already in use"):
            await start_server(FetcherService(settings), settings, first.port)
        assert await health_status(first.address) == health_pb2.HealthCheckResponse.SERVING
    finally:
        await first.stop()


async def test_secrets_are_never_logged() -> None:
    secrets = {
        "STORYWIRE_CLIENT_TOKEN": "client-secret-value-1",
        "STORYWIRE_SERVICE_TOKEN": "service-secret-value-2",
        "STORYWIRE_LLM_API_KEY": "llm-secret-value-3",
    }
    env = {**secrets, "STORYWIRE_LOG_LEVEL": "DEBUG", "STORYWIRE_WORKER_ENABLED": "false"}
    proc = ServiceProcess("synthesizer", env=env).start()
    try:
        await wait_serving(proc.address)  # the start-up log lines are written before SERVING
    finally:
        proc.terminate()
    output = proc.output()
    assert "listening" in output
    for value in secrets.values():
        assert value not in output
    settings = load_settings(FetcherSettings, client_token=secrets["STORYWIRE_CLIENT_TOKEN"])
    assert "secret-value" not in repr(settings)


async def test_the_database_password_is_never_logged(dsn: str) -> None:
    """STORYWIRE_DATABASE_URL carries the password: a store that connects with it, and one that cannot
    reach its database and logs every failed attempt, never write it; settings show it masked."""
    password = "db-secret-value-4"
    with_password = dsn.replace("@", f":{password}@", 1)  # postgresql://user:PASSWORD@host:port/db
    unreachable = f"postgresql://storywire:{password}@127.0.0.1:{free_port()}/none"
    env = {"STORYWIRE_LOG_LEVEL": "DEBUG"}
    serving = ServiceProcess("store", env={**env, "STORYWIRE_DATABASE_URL": with_password}).start()
    failing = ServiceProcess("store", env={**env, "STORYWIRE_DATABASE_URL": unreachable}).start()
    try:
        await wait_serving(serving.address)  # PostgreSQL trusts loopback: the password is not checked
        deadline = asyncio.get_running_loop().time() + 30
        while "Connect call failed" not in failing.output() and "refused" not in failing.output():
            assert asyncio.get_running_loop().time() < deadline, failing.output()[-2000:]
            await asyncio.sleep(0.1)
    finally:
        serving.terminate()
        failing.terminate()
    for output in (serving.output(), failing.output()):
        assert "listening" in output
        assert password not in output
    settings = load_settings(StoreSettings, database_url=unreachable)
    assert password not in repr(settings)
    assert password not in str(settings.model_dump())
    assert shown_secret(settings.database_url) == unreachable.replace(password, "***")
    assert shown_secret(SecretStr("opaque-token")) == "(secret)"
    in_query = f"postgresql://storywire@127.0.0.1:1/storywire?password={password}"
    assert shown_secret(SecretStr(in_query)) == "(secret)"

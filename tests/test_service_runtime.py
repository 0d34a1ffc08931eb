"""Each service, run as `python -m services.<name>`, serves health and reflection and drains on SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2

from devtools.stack import StackInfo
from tests.helpers import ServiceProcess, health_status, reflected_services, wait_serving

pytestmark = pytest.mark.integration

SERVICES = {
    "fetcher": "storywire.v1.FetcherService",
    "synthesizer": "storywire.v1.SynthesizerService",
    "store": "storywire.v1.StoreService",
}


@pytest.mark.parametrize("name", sorted(SERVICES))
async def test_health_reflection_and_sigterm(name: str, stack: StackInfo) -> None:
    proc = ServiceProcess(name, env=stack.env()).start()
    try:
        await wait_serving(proc.address)
        assert await health_status(proc.address, SERVICES[name]) == health_pb2.HealthCheckResponse.SERVING
        listed = await reflected_services(proc.address)
        assert SERVICES[name] in listed
        assert "grpc.health.v1.Health" in listed
        proc.signal(signal.SIGTERM)
        code, output = proc.wait()
        assert code == 0, output
        assert "shutting down" in output
        assert "stopped" in output
    finally:
        proc.stop()


def test_bad_setting_exits_2_with_a_clear_message() -> None:
    proc = ServiceProcess("store", env={"STORYWIRE_LOG_LEVEL": "LOUD"}).start()
    code, output = proc.wait()
    assert code == 2
    assert "STORYWIRE_LOG_LEVEL='LOUD'" in output
    assert "Traceback" not in output


def test_missing_embeddings_model_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    env = {"STORYWIRE_CLUSTER_BACKEND": "embeddings", "STORYWIRE_CLUSTER_EMBEDDINGS_MODEL_DIR": str(tmp_path)}
    proc = ServiceProcess("synthesizer", env=env).start()
    code, output = proc.wait()
    assert code == 2
    assert f"STORYWIRE_CLUSTER_BACKEND='embeddings': no model.safetensors in {tmp_path}" in output
    assert "Traceback" not in output

"""The commands deploy/k8s/flink's containers run, run here: the Beam job server with the
Deployment's arguments (the job-server jar of `make runners`, the jar Beam's job-server image
holds) and the TaskManager sidecar's Python worker pool. Only the ports, the pod's address and the
artifacts folder are swapped for local ones; no Kubernetes runs."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
import grpc
import pytest
from apache_beam.portability.api import beam_job_api_pb2, beam_job_api_pb2_grpc
from apache_beam.runners.job import utils as job_utils

from pipeline.runners import flink_job_server_jar
from tests.conftest import free_port, wait_for
from tests.unit.test_deploy_flink import BASE, FLINK_MAIN_CONTAINER, render
from wirestream.config import load_config

JOB_SERVER_MAIN = "org.apache.beam.runners.flink.FlinkJobServerDriver"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


@pytest.fixture
def process_of() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts, stopped (by their own pids) when it ends."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(20)


def _local_args(args: list[str], ports: dict[str, int], artifacts: Path) -> list[str]:
    """The manifest's arguments with this machine's ports, address and folder."""
    local = []
    for arg in args:
        name, _, value = arg.partition("=")
        if name in ("--job-port", "--artifact-port"):
            value = str(ports[name])
        elif name == "--job-host":
            assert value == "$(POD_IP)"
            value = "127.0.0.1"
        elif name == "--artifacts-dir":
            value = str(artifacts)
        local.append(f"{name}={value}")
    return local


def test_the_job_server_takes_the_manifests_arguments_and_names_its_address_for_staging(
    tmp_path: Path, process_of: list[subprocess.Popen[bytes]]
) -> None:
    deployment = [d for d in render(BASE) if d["kind"] == "Deployment"]
    (container,) = deployment[0]["spec"]["template"]["spec"]["containers"]
    ports = {"--job-port": free_port(), "--artifact-port": free_port()}
    args = _local_args(container["args"], ports, tmp_path / "artifacts")
    jar = flink_job_server_jar(load_config())
    assert jar.is_file(), f"the Flink job-server jar is not at {jar}: build it with `make runners`"
    log = (tmp_path / "job-server.log").open("wb")
    # What the image's flink-job-server.sh runs: java -cp "jars/*" FlinkJobServerDriver "$@".
    process_of.append(
        subprocess.Popen(
            ["java", "-cp", str(jar), JOB_SERVER_MAIN, *args], stdout=log, stderr=subprocess.STDOUT
        )
    )
    wait_for(lambda: _listening(ports["--job-port"]), 60, "the job server's job port")
    assert process_of[0].poll() is None, (tmp_path / "job-server.log").read_text()

    # A client preparing a job is told to stage its artifacts at --job-host:--artifact-port (the
    # pod's address in the manifest), so that address must be one the client can reach.
    pipeline = beam.Pipeline()
    _ = pipeline | beam.Create([1])
    with grpc.insecure_channel(f"127.0.0.1:{ports['--job-port']}") as channel:
        response = beam_job_api_pb2_grpc.JobServiceStub(channel).Prepare(
            beam_job_api_pb2.PrepareJobRequest(
                pipeline=pipeline.to_runner_api(),
                job_name="manifest-check",
                pipeline_options=job_utils.dict_to_struct({}),
            ),
            timeout=60,
        )
    assert response.artifact_staging_endpoint.url == f"127.0.0.1:{ports['--artifact-port']}"
    assert _listening(ports["--artifact-port"])


def test_the_taskmanager_sidecar_command_serves_the_worker_pool(
    process_of: list[subprocess.Popen[bytes]],
) -> None:
    flink = _one(render(BASE), "FlinkDeployment")
    containers = flink["spec"]["taskManager"]["podTemplate"]["spec"]["containers"]
    (pool,) = [c for c in containers if c["name"] != FLINK_MAIN_CONTAINER]
    port = free_port()
    python, *rest = pool["command"]
    assert python == "python"  # the wirestream image's virtualenv is first on its PATH
    command = [
        sys.executable,
        *(f"--service_port={port}" if a.startswith("--service_port=") else a for a in rest),
    ]
    process_of.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait_for(lambda: _listening(port) or process_of[0].poll() is not None, 60, "the worker pool")
    assert process_of[0].poll() is None, f"`{' '.join(command)}` exited {process_of[0].returncode}"
    assert _listening(port)

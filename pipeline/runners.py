"""Pipeline options for the three runners, and where their binaries live.

The Prism binary and the Flink job-server jar are built for exactly the Beam version the Python
SDK reports (deploy/prism/install.sh, deploy/flink/build.sh; `make runners` runs both).
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from apache_beam.version import __version__ as BEAM_VERSION

from wirestream.config import RUNNERS, Config
from wirestream.errors import UserError

__all__ = [
    "records_per_batch",
    "BEAM_VERSION",
    "FLINK_VERSION",
    "RUNNERS",
    "runner_options",
    "runs_locally",
    "worker_command",
    "prism_binary",
    "flink_job_server_jar",
]

FLINK_VERSION = "1.19"


def prism_binary(config: Config) -> Path:
    return Path(config.prism_location or Path(config.cache_dir) / "prism" / BEAM_VERSION / "prism")


def flink_job_server_jar(config: Config) -> Path:
    default = (
        Path(config.cache_dir) / "flink" / f"beam-runners-flink-{FLINK_VERSION}-job-server-{BEAM_VERSION}.jar"
    )
    return Path(config.flink_job_server_jar or default)


def _require(path: Path, what: str) -> str:
    if not path.is_file():
        raise UserError(
            f"{what} not found at {path}; build it with `make runners` (or set its path in the config)"
        )
    return str(path)


def worker_command(config: Config) -> Path:
    """The executable a TaskManager starts each Python worker with (Beam's PROCESS environment):
    configured, or a launcher of this interpreter's `wirestream.sdk_boot`, written once."""
    if config.flink_worker_command:
        return Path(config.flink_worker_command)
    launcher = Path(config.cache_dir) / "flink" / "sdk-boot"
    text = f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m wirestream.sdk_boot "$@"\n'
    if not launcher.is_file() or launcher.read_text() != text:
        launcher.parent.mkdir(parents=True, exist_ok=True)
        partial = launcher.with_suffix(".partial")
        partial.write_text(text)
        partial.chmod(0o755)
        partial.replace(launcher)
    return launcher


def runs_locally(runner: str) -> bool:
    """Whether the runner's workers share this machine (and this process's files): the one place
    that decides where the local accelerator (`pipeline.workers`) may be used."""
    return runner != "flink-cluster"


def records_per_batch(config: Config, runner: str) -> int | None:
    """Most records one pipeline run of ``runner`` reads: larger batches on the session cluster,
    where every run is a job with a fixed cost of seconds."""
    return config.flink_records_per_batch if runner == "flink-cluster" else config.max_records_per_batch


def runner_options(config: Config, runner: str) -> list[str]:
    """Beam options for ``runner``; LOOPBACK keeps the SDK harness in this process for Prism and Flink."""
    if runner == "direct":
        return ["--runner=DirectRunner"]
    if runner == "prism":
        return [
            "--runner=PrismRunner",
            f"--prism_location={_require(prism_binary(config), 'the Prism runner binary')}",
            "--environment_type=LOOPBACK",
        ]
    if runner == "flink":
        return [
            "--runner=FlinkRunner",
            "--flink_master=[local]",
            f"--flink_version={FLINK_VERSION}",
            f"--flink_job_server_jar={_require(flink_job_server_jar(config), 'the Flink job-server jar')}",
            "--environment_type=LOOPBACK",
            "--parallelism=2",
        ]
    if runner == "flink-cluster":
        # The session cluster's job server turns the pipeline into a Flink job; the TaskManagers
        # run its Python stages in workers of their own.
        parallelism = config.flink_parallelism or config.flink_taskmanagers * config.flink_slots
        if config.flink_environment == "external":
            # Each TaskManager's own worker pool: its pod's sidecar, at the pod's localhost.
            environment = [
                "--environment_type=EXTERNAL",
                f"--environment_config=localhost:{config.flink_worker_pool_port}",
            ]
        elif config.flink_environment == "process":
            command = json.dumps({"command": str(worker_command(config))})
            environment = ["--environment_type=PROCESS", f"--environment_config={command}"]
        else:
            raise UserError(f"flink_environment {config.flink_environment!r}: use 'process' or 'external'")
        return [
            "--runner=PortableRunner",
            f"--job_endpoint={config.flink_host}:{config.flink_job_port}",
            *environment,
            f"--parallelism={parallelism}",
            # Flink's streaming mode for bounded batches too: its operators chain, a stage's
            # outputs go each to its own consumers (batch mode sends every output of a stage to
            # every consumer of any one), and continuous runs use the same graph.
            "--streaming",
        ]
    raise UserError(f"unknown runner {runner!r}; known runners: {', '.join(RUNNERS)}")

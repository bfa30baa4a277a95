"""Pipeline options for the three runners, and where their binaries live.

The Prism binary and the Flink job-server jar are built for exactly the Beam version the Python
SDK reports (deploy/prism/install.sh, deploy/flink/build.sh; `make runners` runs both).
"""

from __future__ import annotations

from pathlib import Path

from apache_beam.version import __version__ as BEAM_VERSION

from wirestream.config import RUNNERS, Config
from wirestream.errors import UserError

__all__ = [
    "BEAM_VERSION",
    "FLINK_VERSION",
    "RUNNERS",
    "runner_options",
    "runs_locally",
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


def runs_locally(runner: str) -> bool:
    """Whether the runner's workers share this machine (and this process's files): the one place
    that decides where the local accelerator (`pipeline.workers`) may be used."""
    return runner != "flink-cluster"


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
        # run its Python stages in workers of the SDK worker pool beside them (EXTERNAL).
        parallelism = config.flink_parallelism or config.flink_taskmanagers * config.flink_slots
        return [
            "--runner=PortableRunner",
            f"--job_endpoint={config.flink_host}:{config.flink_job_port}",
            "--environment_type=EXTERNAL",
            # Each TaskManager's own worker pool (its pod's sidecar; here, the one beside them).
            f"--environment_config=localhost:{config.flink_worker_pool_port}",
            f"--parallelism={parallelism}",
        ]
    raise UserError(f"unknown runner {runner!r}; known runners: {', '.join(RUNNERS)}")

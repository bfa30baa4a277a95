"""A Flink session cluster on this machine (`wirestream flink up|status|down`), the runner
`flink-cluster` submits pipeline runs to.

It is the topology of a real cluster, every part its own process: a JobManager
(`StandaloneSessionClusterEntrypoint`) with its REST endpoint and web UI, N TaskManagers
(`TaskManagerRunner`), each starting the pipeline's Python workers itself (Beam's PROCESS
environment, `wirestream.sdk_boot`: a TaskManager's workers are its own, as a TaskManager pod's
worker-pool sidecar is its own on Kubernetes), and the Beam job server (`FlinkJobServerDriver
--flink-master`) that turns a Beam pipeline into a Flink job and submits it over REST.

Maven Central does not serve the `flink-dist` distribution, so deploy/flink/cluster/pom.xml pulls the
modules the cluster's entry points live in (flink-runtime, flink-clients, flink-streaming-java,
flink-runtime-web) into a cache folder, once. JVM sizes come from Flink's own memory model
(`BashJavaUtils`, what flink-dist's start scripts call). Everything listens on 127.0.0.1; pids,
configuration and logs live under <state_dir>/flink.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wirestream.broker import _port_open, copy_dependencies, running_pid, stop_process
from wirestream.config import Config
from wirestream.errors import UserError

__all__ = ["FlinkCluster", "ClusterStatus", "JOBMANAGER_MAIN", "TASKMANAGER_MAIN"]

DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy" / "flink" / "cluster"
JOBMANAGER_MAIN = "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint"
TASKMANAGER_MAIN = "org.apache.flink.runtime.taskexecutor.TaskManagerRunner"
JOB_SERVER_MAIN = "org.apache.beam.runners.flink.FlinkJobServerDriver"
START_TIMEOUT_S = 120.0
# What flink-dist's configuration gives every Flink JVM on Java 17: Flink and Beam reach into these
# JDK packages (Kryo, memory management, exception enrichment).
_JAVA_17_OPENS = [
    f"--add-opens=java.base/{package}=ALL-UNNAMED"
    for package in (
        "java.lang",
        "java.lang.reflect",
        "java.net",
        "java.io",
        "java.nio",
        "sun.nio.ch",
        "java.text",
        "java.time",
        "java.util",
        "java.util.concurrent",
        "java.util.concurrent.atomic",
        "java.util.concurrent.locks",
    )
] + ["--add-exports=java.base/sun.net.util=ALL-UNNAMED"]
_LOG4J = """\
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = MainAppender
appender.main.name = MainAppender
appender.main.type = File
appender.main.append = true
appender.main.fileName = ${sys:log.file}
appender.main.layout.type = PatternLayout
appender.main.layout.pattern = %d{yyyy-MM-dd HH:mm:ss,SSS} %-5p %-60c %x - %m%n
"""


@dataclass
class ClusterStatus:
    running: bool
    processes: list[tuple[str, int | None]] = field(default_factory=list)
    taskmanagers: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    details: list[tuple[str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{'cluster':<14}{'running' if self.running else 'not running'}"]
        for name, pid in self.processes:
            out.append(f"{name:<14}{f'running (pid {pid})' if pid else 'not running'}")
        out += [f"{label:<14}{value}" for label, value in self.details]
        for tm in self.taskmanagers:
            out.append(f"{'taskmanager':<14}{tm['id']}: {tm['slots']} slot(s), {tm['free']} free")
        for job in self.jobs:
            where = ", ".join(job["taskmanagers"]) or "-"
            out.append(
                f"{'job':<14}{job['id']} {job['state']:<9} {job['seconds']:.1f}s {job['name']} on {where}"
            )
        return out


class FlinkCluster:
    def __init__(self, config: Config) -> None:
        for name in ("flink_port", "flink_job_port"):
            port = getattr(config, name)
            if not 0 < port < 65536:
                raise UserError(f"{name} {port} is not a TCP port (1-65535)")
        if config.flink_taskmanagers < 1 or config.flink_slots < 1:
            raise UserError("flink_taskmanagers and flink_slots must be at least 1")
        self.config = config
        self.home = Path(config.state_dir) / "flink"
        self.conf_dir = self.home / "conf"
        self.log_dir = self.home / "logs"
        self.settings_file = self.home / "cluster.json"
        self.lib_dir = Path(config.cache_dir) / "flink-cluster-lib"
        self.rest = f"http://127.0.0.1:{config.flink_port}"
        self._children: dict[str, subprocess.Popen[bytes]] = {}  # what this object started

    # -- processes -------------------------------------------------------------------------------

    def _pid_file(self, name: str) -> Path:
        return self.home / f"{name}.pid"

    def _names(self, taskmanagers: int) -> list[tuple[str, str]]:
        """(process name, the main class or module its command line holds), in start order."""
        return (
            [("jobmanager", JOBMANAGER_MAIN)]
            + [(f"taskmanager-{i}", TASKMANAGER_MAIN) for i in range(1, taskmanagers + 1)]
            + [("job-server", JOB_SERVER_MAIN)]
        )

    def _started(self) -> dict[str, Any]:
        try:
            settings = json.loads(self.settings_file.read_text("utf-8"))
            return settings if isinstance(settings, dict) else {}
        except (OSError, ValueError):
            return {}

    def _pids(self) -> list[tuple[str, int | None]]:
        count = int(self._started().get("taskmanagers", self.config.flink_taskmanagers))
        return [(name, running_pid(self._pid_file(name), main)) for name, main in self._names(count)]

    def fetch_jars(self) -> Path:
        stamp = self.lib_dir / ".complete"
        pom = DEPLOY_DIR / "pom.xml"
        fingerprint = pom.read_text("utf-8")
        if not (stamp.exists() and stamp.read_text("utf-8") == fingerprint):
            copy_dependencies(pom, self.lib_dir, "flink", ("java", "mvn"))
            stamp.write_text(fingerprint, "utf-8")
        return self.lib_dir

    def _write_conf(self, taskmanagers: int) -> None:
        config = self.config
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        settings = {
            "jobmanager.rpc.address": "localhost",
            "jobmanager.rpc.port": config.flink_port + 42,
            "jobmanager.bind-host": "127.0.0.1",
            "jobmanager.memory.process.size": "768m",
            "rest.address": "localhost",
            "rest.bind-address": "127.0.0.1",
            "rest.port": config.flink_port,
            "taskmanager.host": "localhost",
            "taskmanager.bind-host": "127.0.0.1",
            "taskmanager.numberOfTaskSlots": config.flink_slots,
            "taskmanager.memory.process.size": config.flink_taskmanager_memory,
            # The pipeline's work runs in the Python workers, not in Flink's managed memory.
            "taskmanager.memory.managed.fraction": 0.05,
            # The Fn API's gRPC buffers (rows on their way to and from the Python workers) are
            # direct memory: Flink's default of none for tasks fails a batch's first large chunks.
            "taskmanager.memory.task.off-heap.size": "1024m",
            "parallelism.default": taskmanagers * config.flink_slots,
            # A TaskManager that dies is noticed within seconds, and the job fails rather than waits.
            "heartbeat.interval": 2000,
            "heartbeat.timeout": 10000,
            "restart-strategy.type": "none",
            "web.submit.enable": "false",
            # Beam's runner classes come from the JVM's classpath, not from the copy each job ships.
            "classloader.resolve-order": "parent-first",
            # Spilled data and the blob caches live with the cluster (and go with `flink down`).
            "io.tmp.dirs": str(self.home / "tmp"),
            "blob.storage.directory": str(self.home / "blobs"),
        }
        text = "".join(f"{key}: {value}\n" for key, value in settings.items())
        (self.conf_dir / "flink-conf.yaml").write_text(text, "utf-8")
        (self.conf_dir / "log4j.properties").write_text(_LOG4J, "utf-8")

    def _resource_params(self, kind: str) -> tuple[list[str], list[str]]:
        """JVM options and dynamic properties for a JobManager or TaskManager, from Flink's memory model."""
        result = subprocess.run(
            [
                "java",
                "-cp",
                f"{self.lib_dir}/*",
                "org.apache.flink.runtime.util.bash.BashJavaUtils",
                f"GET_{kind}_RESOURCE_PARAMS",
                "--configDir",
                str(self.conf_dir),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        lines = [
            line.removeprefix("BASH_JAVA_UTILS_EXEC_RESULT:")
            for line in result.stdout.splitlines()
            if line.startswith("BASH_JAVA_UTILS_EXEC_RESULT:")
        ]
        if result.returncode != 0 or len(lines) < 2:
            raise UserError(
                f"Flink refused its memory settings: {(result.stdout + result.stderr).strip()[-300:]}"
            )
        return lines[-2].split(), lines[-1].split()

    def _launch(
        self, name: str, command: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with open(self.log_dir / f"{name}.out", "ab") as console:
            process = subprocess.Popen(
                command,
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.home,
                env=env,
            )
        self._pid_file(name).write_text(str(process.pid))
        self._children[name] = process
        return process

    def _java(self, name: str, jvm: list[str], main: str, *args: str) -> list[str]:
        # Beam's Flink runner is on every JVM's classpath, as Flink's own modules are, and Flink
        # resolves classes there first: they load and are compiled once per JVM, not once per
        # job (a batch) from the copy of the runner each job ships.
        return [
            "java",
            *jvm,
            *_JAVA_17_OPENS,
            "-XX:+ExitOnOutOfMemoryError",
            f"-Dlog.file={self.log_dir / (name + '.log')}",
            f"-Dlog4j.configurationFile={self.conf_dir / 'log4j.properties'}",
            "-cp",
            f"{self.lib_dir}/*:{self._job_server_jar()}",
            main,
            "--configDir",
            str(self.conf_dir),
            *args,
        ]

    def up(self, taskmanagers: int | None = None) -> tuple[bool, float]:
        """Start the cluster, or the processes of a running one that died (a TaskManager killed:
        it rejoins, as a Kubernetes Deployment would restart it); (started anything, seconds)."""
        wanted = taskmanagers or int(self._started().get("taskmanagers", 0)) or self.config.flink_taskmanagers
        if wanted < 1:
            raise UserError("--taskmanagers must be at least 1")
        pids = dict(self._pids())
        if any(pids.values()):
            started = int(self._started().get("taskmanagers", 0))
            if started != wanted:
                raise UserError(
                    f"a Flink cluster of {started} TaskManager(s) already runs from {self.home}; "
                    "`wirestream flink down` first"
                )
            if all(pids.values()):
                return False, 0.0
            if not pids["jobmanager"]:
                raise UserError(
                    f"the Flink JobManager of {self.home} is not running but other parts are; "
                    "`wirestream flink down`, then up"
                )
            missing = [name for name, pid in pids.items() if not pid]
        else:
            self._check_ports()
            self.fetch_jars()
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._write_conf(wanted)
            self.settings_file.write_text(json.dumps({"taskmanagers": wanted}), "utf-8")
            missing = [name for name, _ in self._names(wanted)]
        job_server = self._job_server_jar()
        began = time.monotonic()
        try:
            for name in missing:
                self._start(name, job_server)
                if name == "jobmanager":
                    self._wait(lambda: self._overview() is not None, "the JobManager")
            self._wait(lambda: len(self._taskmanagers()) >= wanted, f"{wanted} TaskManager(s)")
            self._wait(lambda: _port_open(self.config.flink_job_port), "the Beam job server")
        except BaseException:
            if "jobmanager" in missing:
                self.down()
            raise
        return True, time.monotonic() - began

    def _job_server_jar(self) -> Path:
        from pipeline.runners import flink_job_server_jar

        job_server = flink_job_server_jar(self.config)
        if not job_server.is_file():
            raise UserError(f"the Flink job-server jar is not at {job_server}; build it with `make runners`")
        return job_server

    def _check_ports(self) -> None:
        for label, port in (
            ("REST", self.config.flink_port),
            ("RPC", self.config.flink_port + 42),
            ("job server", self.config.flink_job_port),
        ):
            if _port_open(port):
                raise UserError(f"port {port} (the Flink {label} port) is already in use by another process")

    def _start(self, name: str, job_server: Path) -> None:
        if name == "jobmanager":
            jvm, dynamic = self._resource_params("JM")
            self._launch(name, self._java(name, jvm, JOBMANAGER_MAIN, *dynamic))
        elif name.startswith("taskmanager-"):
            jvm, dynamic = self._resource_params("TM")
            args = [*dynamic, "-D", f"taskmanager.resource-id={name}"]
            self._launch(name, self._java(name, jvm, TASKMANAGER_MAIN, *args))
        else:
            self._launch(
                name,
                [
                    "java",
                    "-Xmx512m",
                    "-cp",
                    str(job_server),
                    JOB_SERVER_MAIN,
                    f"--flink-master=localhost:{self.config.flink_port}",
                    f"--job-port={self.config.flink_job_port}",
                    "--artifact-port=0",
                    "--expansion-port=-1",
                    f"--artifacts-dir={self.home / 'artifacts'}",
                    f"--flink-conf-dir={self.conf_dir}",
                ],
            )

    def _wait(self, ready: Any, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for name, process in self._children.items():
                if process.poll() is not None:
                    raise UserError(
                        f"the Flink {name} exited while starting; see {self.log_dir / (name + '.log')}"
                    )
            if ready():
                return
            time.sleep(0.25)
        raise UserError(
            f"{what} did not come up within {START_TIMEOUT_S:.0f}s; see the logs in {self.log_dir}"
        )

    def down(self, timeout_s: float = 30.0) -> bool:
        """Stop every process of the cluster (job server first, JobManager last)."""
        stopped = False
        for name, pid in reversed(self._pids()):
            stopped = stop_process(pid, self._pid_file(name), timeout_s) or stopped
        if not any(pid for _name, pid in self._pids()):
            for scratch in ("tmp", "blobs"):  # what the stopped processes spilled and cached
                shutil.rmtree(self.home / scratch, ignore_errors=True)
        return stopped

    # -- the REST API ----------------------------------------------------------------------------

    def _get(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(self.rest + path, timeout=5) as response:
                return json.loads(response.read())
        except (OSError, ValueError, urllib.error.URLError):
            return None

    def _overview(self) -> dict[str, Any] | None:
        overview = self._get("/overview")
        return overview if isinstance(overview, dict) else None

    def _taskmanagers(self) -> list[dict[str, Any]]:
        found = self._get("/taskmanagers") or {}
        return [
            {"id": tm["id"], "slots": tm.get("slotsNumber", 0), "free": tm.get("freeSlots", 0)}
            for tm in found.get("taskmanagers", [])
        ]

    def jobs(self, limit: int = 5) -> list[dict[str, Any]]:
        """The latest jobs, newest first, each with the TaskManagers its tasks ran on."""
        found = (self._get("/jobs/overview") or {}).get("jobs", [])
        found.sort(key=lambda job: job.get("start-time", 0), reverse=True)
        jobs = []
        for job in found[:limit]:
            where: set[str] = set()
            detail = self._get(f"/jobs/{job['jid']}") or {}
            for vertex in detail.get("vertices", []):
                placed = self._get(f"/jobs/{job['jid']}/vertices/{vertex['id']}/taskmanagers") or {}
                for tm in placed.get("taskmanagers", []):
                    if tm.get("taskmanager-id"):
                        where.add(tm["taskmanager-id"])
            jobs.append(
                {
                    "id": job["jid"],
                    "name": job.get("name", ""),
                    "state": job.get("state", "?"),
                    "seconds": max(0, job.get("duration", 0)) / 1000,
                    "taskmanagers": sorted(where),
                }
            )
        return jobs

    def status(self) -> ClusterStatus:
        pids = self._pids()
        overview = self._overview()
        status = ClusterStatus(running=overview is not None and all(pid for _, pid in pids), processes=pids)
        status.details = [
            ("web ui", self.rest),
            ("job server", f"localhost:{self.config.flink_job_port}"),
            ("workers", "started by each TaskManager (python -m wirestream.sdk_boot)"),
            ("logs", str(self.log_dir)),
        ]
        if overview is not None:
            status.details.insert(0, ("flink", str(overview.get("flink-version", "?"))))
            status.taskmanagers = self._taskmanagers()
            status.jobs = self.jobs()
        return status


# -- command line -------------------------------------------------------------------------------


def add_parsers(commands: Any, common: Any) -> None:
    """The `flink` command, under the CLI's subcommands."""
    flink = commands.add_parser("flink", help="run a local Flink session cluster for --runner flink-cluster")
    actions = flink.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (
        ("up", "start the JobManager, TaskManagers and job server (idempotent)"),
        ("status", "show the processes, TaskManagers and latest jobs with where they ran"),
        ("down", "stop them all"),
    ):
        sub = actions.add_parser(action, help=text)
        common(sub, kafka=False)
        sub.add_argument(
            "--port", type=int, help="REST/web UI port (default 8081, env WIRESTREAM_FLINK_PORT)"
        )
        if action == "up":
            sub.add_argument(
                "--taskmanagers", type=int, metavar="N", help="TaskManagers to start (default 2)"
            )


def run(args: Any, load: Any) -> int:
    """Run a `flink` action; ``load`` is the CLI's config loader (flags > env > file)."""
    cluster = FlinkCluster(load(args, flink_port=args.port))
    if args.action == "up":
        started, seconds = cluster.up(getattr(args, "taskmanagers", None))
        if started:
            print(f"flink session cluster started in {seconds:.1f}s; web ui {cluster.rest}")
        else:
            print(f"flink session cluster already running; web ui {cluster.rest}")
    elif args.action == "down":
        print("flink session cluster stopped" if cluster.down() else "flink session cluster was not running")
        return 0
    status = cluster.status()
    for line in status.lines():
        print(line)
    return 0 if status.running else 3

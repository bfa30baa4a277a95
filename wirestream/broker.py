"""The local single-node Kafka broker (KRaft) that `wirestream kafka up` runs from deploy/kafka.

Jars come from Maven Central through deploy/kafka/pom.xml into a cache folder, once. The broker is
a plain JVM process started in its own session; its pid, config and log live under the state dir,
with a record of the port it listens on and the id of its cluster (``broker.json``): a command
that finds another cluster at that address refuses to read it (`check_cluster`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wirestream.config import Config
from wirestream.errors import UserError

DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy" / "kafka"
START_TIMEOUT_S = 90.0
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str
    data_dir: Path
    log_file: Path
    sasl_bootstrap: str | None = None
    sasl_credentials: Path | None = None
    elsewhere: int | None = None  # the port this state dir's broker runs on, when not the one asked for
    cluster_id: str | None = None

    def lines(self) -> list[str]:
        state = f"running (pid {self.pid})" if self.running else "not running"
        if self.elsewhere is not None:
            state += f" on this port (this state dir's broker runs on port {self.elsewhere})"
        lines = [
            f"broker      {state}",
            f"bootstrap   {self.bootstrap}",
            f"data dir    {self.data_dir}",
            f"log file    {self.log_file}",
        ]
        if self.cluster_id:
            lines.append(f"cluster id  {self.cluster_id}")
        if self.sasl_bootstrap:
            lines.append(
                f"sasl        {self.sasl_bootstrap} (SASL_PLAINTEXT: {', '.join(SASL_MECHANISMS)}; "
                f"user and password in {self.sasl_credentials})"
            )
        return lines


class LocalBroker:
    """One KRaft node, broker and controller. Alone (node 1 of a quorum of one) it is the default
    local broker; `LocalCluster` runs three of them as one replicated cluster."""

    def __init__(
        self,
        config: Config,
        node: int = 1,
        voters: str | None = None,
        replication: int = 1,
        home: Path | None = None,
    ) -> None:
        self.config = config
        self.node = node
        self.replication = replication
        self.home = home or Path(config.state_dir) / "kafka"
        self.data_dir = Path(config.broker_data_dir) if config.broker_data_dir else self.home / "data"
        self.log_dir = self.home / "logs"
        self.pid_file = self.home / "broker.pid"
        self.state_file = self.home / "broker.json"
        self.properties = self.home / "server.properties"
        self.lib_dir = Path(config.cache_dir) / "kafka-lib"
        self.bootstrap = f"127.0.0.1:{config.broker_port}"
        sasl_port = config.broker_sasl_port if config.broker_sasl_port is not None else config.broker_port + 2
        self.sasl_port: int | None = sasl_port or None
        self.sasl_bootstrap = f"127.0.0.1:{sasl_port}" if sasl_port else None
        self.credentials_file = self.home / "sasl-credentials.json"
        self.controller_port = config.broker_controller_port or config.broker_port + 1
        self.voters = voters or f"{node}@127.0.0.1:{self.controller_port}"

    def status(self) -> BrokerStatus:
        """This port's broker: running only when this state dir's broker listens on this port."""
        pid = self._pid()
        return BrokerStatus(
            pid is not None,
            pid,
            self.bootstrap,
            self.data_dir,
            self.log_dir / "server.log",
            self.sasl_bootstrap,
            self.credentials_file if self.sasl_port else None,
            self._elsewhere(),
            self.cluster_id(),
        )

    def _recorded(self) -> dict[str, Any]:
        try:
            record = json.loads(self.state_file.read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def cluster_id(self) -> str | None:
        """The id of the cluster this state dir's broker formatted, once it has started."""
        found = self._recorded().get("cluster_id")
        return str(found) if found else None

    def _elsewhere(self) -> int | None:
        """The port this state dir's broker runs on, when it runs on another port than this one."""
        if running_pid(self.pid_file, "kafka.Kafka") is None:
            return None
        port = self._recorded().get("port", self.config.broker_port)
        return int(port) if port != self.config.broker_port else None

    def sasl_credentials(self) -> tuple[str, str]:
        """The SASL listener's user and password: from config, else generated once and kept (mode 0600)."""
        username = self.config.broker_sasl_username
        if self.config.broker_sasl_password:
            password = self.config.broker_sasl_password
        else:
            try:
                stored = json.loads(self.credentials_file.read_text("utf-8"))
                password = stored["password"] if stored["username"] == username else secrets.token_urlsafe(18)
            except (OSError, ValueError, KeyError, TypeError):
                password = secrets.token_urlsafe(18)
        for value in (username, password):
            if not value or any(c in value for c in '"\\\n;='):
                raise UserError(
                    'SASL user names and passwords of the local broker may not contain " \\ ; = or newlines'
                )
        self.home.mkdir(parents=True, exist_ok=True)
        _write_private(self.credentials_file, json.dumps({"username": username, "password": password}))
        return username, password

    def _sasl_properties(self) -> tuple[str, str]:
        if not self.sasl_port:
            return "", ""
        username, password = self.sasl_credentials()
        listener = f",SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}"
        prefix = "listener.name.sasl_plaintext"
        block = "\n".join(
            [
                f"sasl.enabled.mechanisms={','.join(SASL_MECHANISMS)}",
                f"{prefix}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule "
                f'required user_{username}="{password}";',
                f"{prefix}.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
                f"{prefix}.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
            ]
        )
        return listener, block

    def _add_scram_user(self) -> None:
        """Create (or refresh) the SCRAM credentials of the SASL user, through the PLAINTEXT listener."""
        from kafka import KafkaAdminClient
        from kafka.admin import UserScramCredentialUpsertion

        username, password = self.sasl_credentials()
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=15000)
        failed: dict[str, str] = {}
        try:
            for mechanism in SASL_MECHANISMS[1:]:  # one credential change per request, says the broker
                errors = admin.alter_user_scram_credentials(
                    [UserScramCredentialUpsertion(username, mechanism, password)]
                )
                failed.update({f"{user} {mechanism}": error for user, error in errors.items() if error})
        finally:
            admin.close()
        if failed:
            raise UserError(f"creating the SCRAM user of the local broker failed: {failed}")

    def _pid(self) -> int | None:
        """The broker's pid, if this state dir's broker runs on this port."""
        if self._elsewhere() is not None:
            return None
        return running_pid(self.pid_file, "kafka.Kafka")

    def fetch_jars(self) -> Path:
        """Resolve the broker's jars with Maven into the cache (once)."""
        pom = DEPLOY_DIR / "pom.xml"
        stamp = self.lib_dir / ".complete"
        if stamp.exists() and stamp.read_text() == pom.read_text():
            return self.lib_dir
        copy_dependencies(pom, self.lib_dir, "broker", ("java", "mvn"))
        stamp.write_text(pom.read_text())
        return self.lib_dir

    def _java(self, main: str, *args: str, heap: str = "256m") -> list[str]:
        # C1-only JIT roughly halves start-up on small machines; the broker here is for ingestion
        # and tests, not for peak throughput.
        return [
            "java",
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:TieredStopAtLevel=1",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.log_dir}",
            f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.properties'}",
            "-cp",
            f"{self.lib_dir}/*",
            main,
            *args,
        ]

    def _write_properties(self) -> None:
        template = (DEPLOY_DIR / "server.properties.template").read_text()
        sasl_listener, sasl_config = self._sasl_properties()
        text = (
            template.replace("${NODE_ID}", str(self.node))
            .replace("${VOTERS}", self.voters)
            .replace("${REPLICATION}", str(self.replication))
            .replace("${MIN_ISR}", str(2 if self.replication >= 3 else 1))
            .replace("${PORT}", str(self.config.broker_port))
            .replace("${CONTROLLER_PORT}", str(self.controller_port))
            .replace("${DATA_DIR}", str(self.data_dir))
            .replace("${SASL_LISTENER}", sasl_listener)
            .replace("${SASL_CONFIG}", sasl_config)
        )
        self.home.mkdir(parents=True, exist_ok=True)
        _write_private(self.properties, text)  # holds the SASL password

    def _format(self, cluster_id: str | None = None) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cluster_id = cluster_id or _kafka_uuid()
        command = self._java(
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id}",  # the '=' form: a random id may start with '-'
            "--config",
            str(self.properties),
            "--ignore-formatted",
        )
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise UserError("formatting Kafka storage failed:\n" + (result.stdout + result.stderr)[-3000:])

    def up(self) -> tuple[bool, float]:
        """Start the broker and wait until it answers; (started, seconds). Idempotent."""
        if self._pid() is not None:
            return False, 0.0
        elsewhere = self._elsewhere()
        if elsewhere is not None:
            raise UserError(
                f"the local broker of {self.config.state_dir} runs on port {elsewhere}: stop it first "
                f"(`wirestream kafka down --port {elsewhere}`) or pass another --state-dir"
            )
        if _port_open(self.config.broker_port):
            raise UserError(
                f"port {self.config.broker_port} is already in use by another process; "
                "choose another with --port or WIRESTREAM_BROKER_PORT"
            )
        if _port_open(self.controller_port):
            raise UserError(
                f"port {self.controller_port} (the KRaft controller) is already in use by another process; "
                "choose another with WIRESTREAM_BROKER_CONTROLLER_PORT (default: broker port + 1)"
            )
        if self.sasl_port and _port_open(self.sasl_port):
            raise UserError(
                f"port {self.sasl_port} (the SASL listener) is already in use by another process; choose another "
                "with WIRESTREAM_BROKER_SASL_PORT, or 0 to run without it"
            )
        started = time.monotonic()
        process = self.launch()
        return True, self.wait_ready(process, started)

    def launch(self, cluster_id: str | None = None) -> subprocess.Popen[bytes]:
        """Format (once, with ``cluster_id`` for a node joining a cluster) and start the node's
        process, without waiting for it: the nodes of a quorum answer only once enough have started."""
        self.fetch_jars()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._write_properties()
        self._format(cluster_id)
        record = {"port": self.config.broker_port, "cluster_id": self._formatted_cluster_id()}
        self.state_file.write_text(json.dumps(record), "utf-8")
        with open(self.log_dir / "console.log", "ab") as console:
            process = subprocess.Popen(
                self._java("kafka.Kafka", str(self.properties), heap=self.config.broker_heap),
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        return process

    def wait_ready(self, process: subprocess.Popen[bytes], started: float) -> float:
        """Wait until the node answers metadata requests; seconds since ``started``."""
        deadline = started + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise UserError(
                    f"the broker exited with code {process.returncode}; see {self.log_dir / 'server.log'}"
                )
            if _answers_metadata(self.bootstrap):
                if self.sasl_port:
                    self._add_scram_user()
                return time.monotonic() - started
            time.sleep(0.25)
        self.down()
        raise UserError(
            f"the broker did not answer within {START_TIMEOUT_S:.0f}s; see {self.log_dir / 'server.log'}"
        )

    def _formatted_cluster_id(self) -> str | None:
        """The cluster id the storage tool wrote into the data folder's meta.properties."""
        try:
            text = (self.data_dir / "meta.properties").read_text("utf-8")
        except OSError:
            return None
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "cluster.id":
                return value.strip()
        return None

    def down(self, timeout_s: float = 60.0) -> bool:
        """Stop this port's broker; False (touching nothing) when it does not run on this port."""
        if self._elsewhere() is not None:
            return False
        return stop_process(self._pid(), self.pid_file, timeout_s)


def check_cluster(config: Config) -> None:
    """Refuse, in one line, to read a Kafka cluster at the local broker's address that is not the
    cluster this state dir's broker formatted (another state dir's broker, or someone else's Kafka
    holding the port): without this a command would silently read that cluster's topics. Nothing is
    checked when the bootstrap servers name another address, when this state dir has never started
    a broker, or when nothing answers (the command then says Kafka is unreachable)."""
    broker = LocalBroker(config)
    servers = [s.strip() for s in config.bootstrap_servers.split(",") if s.strip()]
    expected = broker.cluster_id()
    if servers != [broker.bootstrap] or not expected or not _port_open(config.broker_port):
        return
    found = _cluster_id(broker.bootstrap)
    if found is not None and found != expected:
        raise UserError(
            f"the Kafka at {broker.bootstrap} is cluster {found}, not the local broker of "
            f"{config.state_dir} (cluster {expected}); pass --bootstrap-servers to read it, or "
            "--port/WIRESTREAM_BROKER_PORT to use the local broker on another port"
        )


def _cluster_id(bootstrap: str) -> str | None:
    """The id of the cluster answering at ``bootstrap``; None when it does not answer."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=5000, bootstrap_timeout_ms=5000
        )
    except (KafkaError, OSError, ValueError):
        return None
    try:
        found = admin.describe_cluster().get("cluster_id")
        return str(found) if found else None
    except (KafkaError, OSError):
        return None
    finally:
        admin.close()


def copy_dependencies(pom: Path, lib_dir: Path, name: str, tools: tuple[str, ...]) -> None:
    """Fetch the runtime jars ``pom`` names into ``lib_dir`` (emptied first) with Maven, for the
    local ``name`` server; a missing tool or a failed fetch is a `UserError` saying what to do."""
    for tool in tools:
        if shutil.which(tool) is None:
            raise UserError(
                f"`{tool}` is not on PATH. The local {name} needs a Java 17+ JDK and Maven 3.8+: "
                "run `make setup` (it installs them with apt on Debian/Ubuntu) or install "
                "openjdk-17-jdk-headless and maven yourself."
            )
    if lib_dir.exists():
        shutil.rmtree(lib_dir)
    lib_dir.mkdir(parents=True)
    command = [
        "mvn",
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={lib_dir}",
        "-DincludeScope=runtime",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise UserError(
            f"fetching the {name} jars with Maven failed:\n" + (result.stdout + result.stderr)[-3000:]
        )


def running_pid(pid_file: Path, main_class: str) -> int | None:
    """The pid a server of this project wrote to ``pid_file``, if that process still runs
    ``main_class`` (a pid reused by another process does not count)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists() and main_class.encode() not in cmdline.read_bytes():
        return None
    return pid


def stop_process(pid: int | None, pid_file: Path, timeout_s: float) -> bool:
    """Stop a server this project started (SIGTERM, then SIGKILL after ``timeout_s``) and forget its
    pid file; False if it was not running."""
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds a password)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(path, 0o600)


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def _kafka_uuid() -> str:
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _answers_metadata(bootstrap: str) -> bool:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    host, port = bootstrap.rsplit(":", 1)
    if not _port_open(int(port)):
        return False
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=3000, bootstrap_timeout_ms=3000
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


@dataclass
class ClusterStatus:
    nodes: list[tuple[int, str, int | None]]  # (node id, address, pid or None)
    controller: int | None
    under_replicated: list[str]  # "topic/partition (isr a,b of replicas a,b,c)"

    @property
    def running(self) -> bool:
        return all(pid for _, _, pid in self.nodes)

    def lines(self) -> list[str]:
        out = []
        for node, address, pid in self.nodes:
            state = f"running (pid {pid})" if pid else "not running"
            role = " controller" if node == self.controller else ""
            out.append(f"node {node:<6} {address:<16} {state}{role}")
        out.append(f"bootstrap   {','.join(address for _, address, _ in self.nodes)}")
        if self.controller is None:
            out.append("controller  unknown (no node answered)")
        if self.under_replicated:
            out.append(f"under-replicated partitions: {len(self.under_replicated)}")
            out += [f"  {line}" for line in self.under_replicated]
        else:
            out.append("under-replicated partitions: 0")
        return out


class LocalCluster:
    """`wirestream kafka up --brokers N`: N KRaft nodes on loopback, each broker and controller (a
    combined quorum: with three nodes any one may die and the other two keep a controller majority
    and every partition's in-sync quorum, which separate controllers would need three more JVMs
    to match). Node i listens on broker_port + 3(i - 1), its controller on the port after; topics get
    replication factor 3 and min.insync.replicas 2. Node 1 is the default broker's folder; the
    others live under <state_dir>/kafka/node-i. The SASL listener is the single broker's only."""

    def __init__(self, config: Config, brokers: int | None = None) -> None:
        self.config = config
        self.home = Path(config.state_dir) / "kafka"
        self.record = self.home / "cluster.json"
        count = brokers or self.recorded_brokers() or 1
        if count not in (1, 3):
            raise UserError("--brokers: 1 (a single broker) or 3 (a replicated cluster)")
        self.brokers = count
        ports = [config.broker_port + 3 * i for i in range(count)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{port + 1}" for i, port in enumerate(ports))
        self.nodes = [
            LocalBroker(
                dataclasses.replace(
                    config,
                    broker_port=port,
                    broker_controller_port=port + 1,
                    broker_sasl_port=0,
                    broker_data_dir=config.broker_data_dir if i == 0 else None,
                ),
                node=i + 1,
                voters=voters,
                replication=min(3, count),
                home=self.home if i == 0 else self.home / f"node-{i + 1}",
            )
            for i, port in enumerate(ports)
        ]
        self.bootstrap = ",".join(node.bootstrap for node in self.nodes)

    def recorded_brokers(self) -> int | None:
        try:
            record = json.loads(self.record.read_text("utf-8"))
            return int(record["brokers"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def up(self) -> tuple[bool, float]:
        """Start every node that is not running (a killed node rejoins and catches up); waits until
        each answers. (started any, seconds)."""
        recorded = self.recorded_brokers()
        running = [node for node in self.nodes if node._pid() is not None]
        if recorded not in (None, self.brokers) and running:
            raise UserError(
                f"a cluster of {recorded} broker(s) runs from {self.home}; `wirestream kafka down` first"
            )
        missing = [node for node in self.nodes if node._pid() is None]
        if not missing:
            return False, 0.0
        for node in missing:
            for port in (node.config.broker_port, node.controller_port):
                if _port_open(port):
                    raise UserError(
                        f"port {port} (node {node.node} of the local cluster) is already in use by another process; "
                        "choose another base port with --port"
                    )
        cluster_id = next(filter(None, (node._formatted_cluster_id() for node in self.nodes)), None)
        cluster_id = cluster_id or _kafka_uuid()
        self.home.mkdir(parents=True, exist_ok=True)
        self.record.write_text(json.dumps({"brokers": self.brokers, "bootstrap": self.bootstrap}), "utf-8")
        started = time.monotonic()
        launched = [(node, node.launch(cluster_id)) for node in missing]
        for node, process in launched:
            node.wait_ready(process, started)
        return True, time.monotonic() - started

    def down(self, timeout_s: float = 60.0) -> bool:
        stopped = False
        for node in reversed(self.nodes):
            stopped = node.down(timeout_s) or stopped
        self.record.unlink(missing_ok=True)
        return stopped

    def status(self) -> ClusterStatus:
        nodes = [(node.node, node.bootstrap, node._pid()) for node in self.nodes]
        controller, under = None, []
        live = [address for _, address, pid in nodes if pid]
        if live:
            from kafka import KafkaAdminClient
            from kafka.errors import KafkaError

            try:
                admin = KafkaAdminClient(bootstrap_servers=live, request_timeout_ms=5000)
            except (KafkaError, OSError):
                admin = None
            if admin is not None:
                try:
                    for topic in admin.describe_topics():
                        for part in topic.get("partitions", []):
                            replicas, isr = part.get("replica_nodes", []), part.get("isr_nodes", [])
                            if len(isr) < len(replicas):
                                under.append(
                                    f"{topic['name']}/{part['partition_index']} "
                                    f"(in sync {sorted(isr)} of {sorted(replicas)})"
                                )
                except (KafkaError, OSError):
                    pass
                finally:
                    admin.close()
            controller = self._quorum_leader(live)
        return ClusterStatus(nodes, controller, sorted(under))

    def _quorum_leader(self, bootstrap: list[str]) -> int | None:
        """The node that leads the KRaft quorum (the active controller), as Kafka's own
        kafka-metadata-quorum tool reports it."""
        node = self.nodes[0]
        node.fetch_jars()
        command = node._java(
            "org.apache.kafka.tools.MetadataQuorumCommand",
            "--bootstrap-server",
            ",".join(bootstrap),
            "describe",
            "--status",
            heap="128m",
        )
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return None
        for line in result.stdout.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "LeaderId" and value.strip().isdigit():
                return int(value.strip())
        return None

"""One typed configuration for every command: defaults, then a YAML file, then environment.

Every scalar key ``name`` can be overridden by ``WIRESTREAM_NAME`` (upper case). Command-line flags
override both. Secrets are read from the environment by preference and never printed.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wirestream.errors import UserError, yaml_problem

ENV_PREFIX = "WIRESTREAM_"
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
RUNNERS = ("direct", "prism", "flink", "flink-cluster")
SECRET_KEYS = frozenset({"sasl_password", "ssl_password", "broker_sasl_password"})


def _default_state_dir() -> str:
    """$XDG_STATE_HOME/wirestream, else ~/.local/state/wirestream"""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(base) / "wirestream")


def _default_cache_dir() -> str:
    """$XDG_CACHE_HOME/wirestream, else ~/.cache/wirestream"""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "wirestream")


def doc(text: str, **kw: Any) -> Any:
    return field(metadata={"doc": text}, **kw)


@dataclass
class Config:
    bootstrap_servers: str = doc("Kafka bootstrap servers, comma-separated.", default="127.0.0.1:9092")
    raw_topic: str = doc("Topic the connectors publish raw stories to.", default="news.raw.v1")
    dlq_topic: str = doc(
        "Topic for connector input that could not become a raw story.", default="news.dlq.v1"
    )
    topic_partitions: int = doc("Partitions for topics wirestream creates.", default=3)
    security_protocol: str = doc("PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.", default="PLAINTEXT")
    sasl_mechanism: str | None = doc("PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.", default=None)
    sasl_username: str | None = doc("SASL user name.", default=None)
    sasl_password: str | None = doc(
        "SASL password (secret: set WIRESTREAM_SASL_PASSWORD).", default=None, repr=False
    )
    ssl_cafile: str | None = doc("CA bundle for SSL listeners.", default=None)
    ssl_certfile: str | None = doc(
        "Client certificate (PEM) for SSL listeners that require one.", default=None
    )
    ssl_keyfile: str | None = doc("Private key (PEM) of the client certificate.", default=None)
    ssl_password: str | None = doc(
        "Password of the client key (secret: set WIRESTREAM_SSL_PASSWORD).", default=None, repr=False
    )
    ssl_check_hostname: bool = doc("Verify that the broker certificate matches its host name.", default=True)
    state_dir: str = doc("Connector state, local broker data and logs.", default_factory=_default_state_dir)
    cache_dir: str = doc("Downloaded jars and built binaries.", default_factory=_default_cache_dir)
    broker_port: int = doc("Port of the local broker started by `wirestream kafka up`.", default=9092)
    broker_controller_port: int | None = doc(
        "KRaft controller port of the local broker; default broker_port + 1.", default=None
    )
    broker_data_dir: str | None = doc("Local broker data; default <state_dir>/kafka/data.", default=None)
    broker_heap: str = doc("JVM heap of the local broker.", default="768m")
    broker_sasl_port: int | None = doc(
        "SASL_PLAINTEXT (PLAIN, SCRAM-SHA-256) listener of the local broker; default broker_port + 2, 0 = none.",
        default=None,
    )
    broker_sasl_username: str = doc("User the local broker's SASL listener accepts.", default="wirestream")
    broker_sasl_password: str | None = doc(
        "That user's password (secret: WIRESTREAM_BROKER_SASL_PASSWORD; default generated once, kept in "
        "<state_dir>/kafka/sasl-credentials.json).",
        default=None,
        repr=False,
    )
    catalog_port: int = doc(
        "Port of the local Iceberg REST catalog started by `wirestream catalog up`.", default=8181
    )
    storage_port: int = doc(
        "Port of the local S3-compatible object store started by `wirestream storage up`.", default=9000
    )
    storage_bucket: str = doc(
        "Bucket `wirestream storage up` creates in the local object store.", default="wirestream"
    )
    output: str | None = doc(
        "Dataset folder: the embedded catalog and the tables' files, or (with catalog_uri) staging only.",
        default=None,
    )
    catalog_uri: str | None = doc(
        "Iceberg REST catalog endpoint; default the embedded SQLite catalog in the output folder.",
        default=None,
    )
    catalog_warehouse: str | None = doc(
        "Warehouse of the REST catalog (e.g. s3://bucket/wirestream); the catalog's default if unset. "
        "Also the one `wirestream catalog up` gives the local catalog (default file://<state_dir>/catalog/warehouse).",
        default=None,
    )
    catalog_namespace: str = doc("Namespace of the stories and dead_letters tables.", default="wirestream")
    s3_endpoint: str | None = doc(
        "S3-compatible endpoint for the tables' files (credentials from AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY only).",
        default=None,
    )
    snapshot_retention_days: float = doc(
        "`maintain` expires snapshots older than this, and removes unreferenced files older than this.",
        default=7.0,
    )
    snapshots_kept: int = doc(
        "At most this many newest snapshots are kept (`maintain`, and `run --continuous` every "
        "`maintain_every_batches`): a commit's cost grows with the snapshots the metadata lists.",
        default=200,
    )
    maintain_every_batches: int = doc(
        "Continuous mode expires snapshots (retention, snapshots_kept) after this many batches; 0 = never.",
        default=50,
    )
    runner: str = doc(
        "Beam runner: direct, prism, flink (an embedded Flink) or flink-cluster (the session cluster of "
        "`wirestream flink up`, or the one flink_port and flink_job_port name).",
        default="direct",
    )
    taxonomy: str | None = doc("Topic taxonomy YAML; default the bundled one.", default=None)
    rows_per_file: int = doc("Target rows per Parquet file (sets shards per batch).", default=200_000)
    max_records_per_batch: int | None = doc(
        "Most Kafka records one pipeline run reads; bigger runs are cut into batches (memory stays flat).",
        default=50_000,
    )
    workers: int = doc(
        "Processes beside the pipeline process that parse, clean, tag and sign stories (0 = all in "
        "it): most of a story's CPU, and it holds the GIL. About one per core; each holds ~170 MiB.",
        default=2,
    )
    commit_interval_s: float = doc("Continuous mode: how often new stories are committed.", default=2.0)
    prism_location: str | None = doc(
        "Prism binary; default <cache_dir>/prism/<beam version>/prism.", default=None
    )
    flink_job_server_jar: str | None = doc(
        "Flink job-server jar; default built by deploy/flink.", default=None
    )
    flink_host: str = doc(
        "Host of the Beam job server in front of the Flink session cluster (runner flink-cluster).",
        default="localhost",
    )
    flink_port: int = doc("REST port (web UI) of the Flink session cluster.", default=8081)
    flink_job_port: int = doc(
        "Port of the Beam job server that submits to the session cluster (`wirestream flink up` starts it).",
        default=8099,
    )
    flink_environment: str = doc(
        "Where the session cluster's TaskManagers run the pipeline's Python workers: 'process' (each "
        "TaskManager starts its own, with flink_worker_command) or 'external' (a worker pool beside "
        "each TaskManager at localhost:flink_worker_pool_port, a pod's sidecar on Kubernetes).",
        default="process",
    )
    flink_worker_command: str | None = doc(
        "Executable a TaskManager starts a Python worker with ('process'); default a launcher of this "
        "Python written under <cache_dir>/flink.",
        default=None,
    )
    flink_worker_pool_port: int = doc(
        "Port of the Python SDK worker pool beside each TaskManager ('external').", default=50000
    )
    flink_taskmanagers: int = doc("TaskManagers `wirestream flink up` starts.", default=2)
    flink_slots: int = doc("Task slots per TaskManager.", default=1)
    flink_taskmanager_memory: str = doc("Process memory of each TaskManager JVM.", default="4096m")
    flink_parallelism: int | None = doc(
        "Parallelism of pipeline runs on the session cluster; default taskmanagers x slots.", default=None
    )
    flink_records_per_batch: int | None = doc(
        "Most Kafka records one pipeline run reads on the session cluster (max_records_per_batch "
        "elsewhere): each run is a Flink job with seconds of fixed cost (submission, its workers' "
        "start, its batch's end), and its workers hold a batch's rows spilled, not in memory.",
        default=200_000,
    )
    source_name: str | None = doc(
        "Source name for `connect files` (default: derived from the path).", default=None
    )
    allow_private_networks: bool = doc(
        "Allow feed and article URLs on loopback, private, link-local or metadata addresses.", default=False
    )
    http_connect_timeout_s: float = doc("Connect timeout for feed and article fetches.", default=10.0)
    http_timeout_s: float = doc("Read timeout (per socket read) for feed and article fetches.", default=20.0)
    http_deadline_s: float = doc(
        "Longest one fetch may take once it holds its host's slot: connect, status line, headers, "
        "body and redirects.",
        default=60.0,
    )
    max_body_bytes: int = doc(
        "Largest feed or article body accepted (after decompression).", default=10 * 1024 * 1024
    )
    max_redirects: int = doc("Redirects followed per fetch.", default=5)
    per_host_concurrency: int = doc("Fetches at the same time against one host.", default=2)
    feed_workers: int = doc("Feeds polled at the same time.", default=8)
    parse_workers: int = doc(
        "Processes parsing feed documents (0 = in the connector process): a hung parse is cut off, and "
        "parsing uses more than one core.",
        default=2,
    )
    feed_interval_s: float = doc(
        "Default seconds between polls of a feed (per feed: interval_s).", default=300.0
    )
    feed_jitter: float = doc("Random spread of each poll delay, as a fraction of it.", default=0.1)
    max_backoff_s: float = doc("Longest delay between polls of a failing feed.", default=3600.0)
    publish_timeout_s: float = doc(
        "Seconds a connector waits for Kafka to acknowledge a poll's stories; what is not acknowledged "
        "by then is fetched and sent again later, and `connect feeds` waits for Kafka to come back.",
        default=30.0,
    )
    seen_ttl_days: float = doc(
        "Days an entry is remembered after it last appeared in its feed.", default=90.0
    )
    metrics_port: int | None = doc(
        "Serve Prometheus metrics on this port (`connect feeds`, `run`).", default=None
    )
    metrics_address: str = doc("Address the metrics endpoint binds to.", default="127.0.0.1")
    log_format: str = doc("Log lines as 'text' or 'json'.", default="text")
    feeds: list[dict[str, Any]] = doc(
        "Feeds for `connect feeds --config`: {url, name, interval_s, fetch_article, encodings}.",
        default_factory=list,
    )

    def redacted(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        for key in SECRET_KEYS & values.keys():
            if values[key]:
                values[key] = "***"
        return values

    def kafka_client_options(self) -> dict[str, Any]:
        """Options shared by every kafka-python client, security included."""
        options: dict[str, Any] = {
            "bootstrap_servers": [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()],
            "security_protocol": self.security_protocol,
            "bootstrap_timeout_ms": 10_000,
        }
        protocol = self.security_protocol.upper()
        if protocol not in SECURITY_PROTOCOLS:
            raise UserError(
                f"security_protocol {self.security_protocol!r}: use one of {list(SECURITY_PROTOCOLS)}"
            )
        options["security_protocol"] = protocol
        if protocol.startswith("SASL_") or self.sasl_mechanism:
            if self.sasl_mechanism not in SASL_MECHANISMS:
                raise UserError(
                    f"security_protocol {protocol} needs sasl_mechanism, one of {list(SASL_MECHANISMS)} "
                    "(config key sasl_mechanism or WIRESTREAM_SASL_MECHANISM)"
                )
            missing = [name for name in ("sasl_username", "sasl_password") if not getattr(self, name)]
            if missing:
                places = ", ".join(f"WIRESTREAM_{name.upper()}" for name in missing)
                raise UserError(
                    f"SASL needs {' and '.join(missing)}: looked in the environment ({places}) and the config file"
                )
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password
        if protocol in ("SSL", "SASL_SSL"):
            options["ssl_check_hostname"] = self.ssl_check_hostname
            for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password"):
                if getattr(self, name):
                    options[name] = getattr(self, name)
        elif self.ssl_cafile:
            options["ssl_cafile"] = self.ssl_cafile
        return options


def _coerce(name: str, raw: Any, kind: Any) -> Any:
    kind_text = str(kind)
    if raw is None:
        return None
    if isinstance(raw, str) and raw == "" and "None" in kind_text:
        return None
    try:
        if kind_text.startswith("bool") or kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if kind_text.startswith("int"):
            return int(raw)
        if kind_text.startswith("float"):
            return float(raw)
        if kind_text.startswith("list"):
            if not isinstance(raw, list):
                raise ValueError(raw)
            return raw
        return str(raw)
    except (TypeError, ValueError):
        raise UserError(f"config key {name!r}: cannot read {raw!r} as {kind_text}") from None


def load_config(
    path: str | os.PathLike[str] | None = None, overrides: dict[str, Any] | None = None
) -> Config:
    """Defaults < YAML file < WIRESTREAM_* environment < explicit overrides (command-line flags)."""
    fields = {f.name: f for f in dataclasses.fields(Config)}
    values: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        if file.is_dir():
            raise UserError(f"config file {file} is a folder, not a file")
        if not file.is_file():
            raise UserError(f"config file {file} does not exist")
        try:
            loaded = yaml.safe_load(file.read_text("utf-8")) or {}
        except UnicodeDecodeError as exc:
            raise UserError(
                f"config file {file} is not UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from None
        except OSError as exc:
            raise UserError(f"config file {file} cannot be read: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise UserError(f"config file {file} is {yaml_problem(exc)}") from None
        if not isinstance(loaded, dict):
            raise UserError(f"config file {file} must hold a mapping of keys to values")
        unknown = sorted(set(loaded) - fields.keys())
        if unknown:
            raise UserError(f"config file {file}: unknown keys {unknown}; known keys: {sorted(fields)}")
        secrets = sorted(SECRET_KEYS & loaded.keys())
        if secrets:
            places = ", ".join(ENV_PREFIX + name.upper() for name in secrets)
            raise UserError(
                f"config file {file}: {secrets} are secrets; set them in the environment ({places}) instead"
            )
        values.update(loaded)
    for name in fields:
        env = os.environ.get(ENV_PREFIX + name.upper())
        if env is not None and name != "feeds":
            values[name] = env
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
    typed = {name: _coerce(name, value, fields[name].type) for name, value in values.items()}
    for name, value in typed.items():
        # Counts, sizes, ports and durations: a negative one is always a mistake.
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            raise UserError(f"config key {name!r}: {value} is negative")
    return Config(**typed)

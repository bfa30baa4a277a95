"""The local Iceberg REST catalog (`wirestream catalog`) and S3-compatible object store
(`wirestream storage`), run from deploy/catalog and deploy/storage the way wirestream/broker.py runs
Kafka.

Jars come from Maven Central through each folder's pom.xml into a cache folder, once. Each server is
a plain JVM process started in its own session, listening on 127.0.0.1 only; its pid, state and log
live under <state_dir>/catalog or <state_dir>/storage. S3 keys come from AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY (or, for the object store, are generated once and kept in a 0600 file). No
secret is logged or put on a command line, and only `wirestream storage credentials`, which is asked
to, prints one.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import secrets
import shlex
import string
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wirestream.broker import _port_open, _write_private, copy_dependencies, running_pid, stop_process
from wirestream.config import Config
from wirestream.errors import UserError

DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy"
START_TIMEOUT_S = 90.0
REGION = "us-east-1"  # S3Proxy accepts any region in a signature; clients need one to sign with
CATALOG_MAIN = "org.apache.iceberg.rest.LocalRESTCatalogServer"
STORAGE_MAIN = "org.gaul.s3proxy.Main"
_AWS_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass
class ServiceStatus:
    name: str
    running: bool
    pid: int | None
    details: list[tuple[str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        state = f"running (pid {self.pid})" if self.running else "not running"
        return [f"{self.name:<12}{state}"] + [f"{label:<12}{value}" for label, value in self.details]


class _JavaService:
    """What the catalog and the object store share: jars, the process, its pid file, its log."""

    name = ""  # the state and cache folder's name, and the CLI command
    main_class = ""
    heap = "256m"

    def __init__(self, config: Config, port: int, environ: Mapping[str, str] | None = None) -> None:
        if not 0 < port < 65536:
            raise UserError(f"{self.name} port {port} is not a TCP port (1-65535)")
        self.config = config
        self.port = port
        # Where AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are looked up (tests pass their own).
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.deploy_dir = DEPLOY_DIR / self.name
        self.home = Path(config.state_dir) / self.name
        self.log_dir = self.home / "logs"
        self.pid_file = self.home / f"{self.name}.pid"
        self.settings_file = self.home / "server.json"  # what the running server was started with
        self.lib_dir = Path(config.cache_dir) / f"{self.name}-lib"

    # -- jars ------------------------------------------------------------------------------------

    def _inputs(self) -> list[Path]:
        """Files whose content decides the jar folder (the pom, plus sources compiled into it)."""
        return [self.deploy_dir / "pom.xml"]

    def _fingerprint(self) -> str:
        digest = hashlib.sha256()
        for path in self._inputs():
            digest.update(path.read_bytes())
        return digest.hexdigest()

    def fetch_jars(self) -> Path:
        """Resolve the server's jars with Maven into the cache (once; again when the pom changes)."""
        stamp = self.lib_dir / ".complete"
        fingerprint = self._fingerprint()
        if stamp.exists() and stamp.read_text() == fingerprint:
            return self.lib_dir
        copy_dependencies(self.deploy_dir / "pom.xml", self.lib_dir, self.name, self._tools())
        self._after_fetch()
        stamp.write_text(fingerprint)
        return self.lib_dir

    def _tools(self) -> tuple[str, ...]:
        return ("java", "mvn")

    def _after_fetch(self) -> None:
        """Anything built from the fetched jars (nothing by default)."""

    def _classpath(self) -> str:
        return f"{self.lib_dir}/*"

    def _java(self, *properties: str) -> list[str]:
        # C1-only JIT and the serial collector: quick start-up and a small footprint on 2 cores.
        return [
            "java",
            f"-Xmx{self.heap}",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            *properties,
            "-cp",
            self._classpath(),
            self.main_class,
        ]

    # -- the process -----------------------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        """What a server started now would be given (no secrets): recorded at start."""
        return {}

    def _running_settings(self) -> dict[str, Any]:
        try:
            settings = json.loads(self.settings_file.read_text("utf-8"))
            return settings if isinstance(settings, dict) else {}
        except (OSError, ValueError):
            return {}

    def _already_running(self) -> bool:
        """True if the server runs with the settings asked for; UserError if it runs with others."""
        pid = self._pid()
        if pid is None:
            return False
        running = self._running_settings()
        differs = [
            f"{key} {running[key]}"
            for key, value in self._settings().items()
            if running.get(key, value) != value
        ]
        if differs:
            raise UserError(
                f"the {self.name} server already runs (pid {pid}) with {', '.join(differs)}; "
                f"`wirestream {self.name} down` first to start it with other settings"
            )
        return True

    def _pid(self) -> int | None:
        return running_pid(self.pid_file, self.main_class)

    def _check_port(self, flag_hint: str) -> None:
        if _port_open(self.port):
            raise UserError(
                f"port {self.port} is already in use by another process; choose another with {flag_hint}"
            )

    def _launch(
        self, command: list[str], env: Mapping[str, str], stdin_text: str | None = None
    ) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / "console.log", "ab") as console:
            process = subprocess.Popen(
                command,
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
                env=dict(env),
                start_new_session=True,
            )
        if stdin_text is not None:
            assert process.stdin is not None
            # If it exited already, the wait for it to answer reports that.
            with contextlib.suppress(BrokenPipeError):
                process.stdin.write(stdin_text.encode("utf-8"))
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
        self.pid_file.write_text(str(process.pid))
        self.settings_file.write_text(json.dumps(self._settings()))
        return process

    def _wait_ready(self, process: subprocess.Popen[bytes], ready: Callable[[], bool]) -> float:
        started = time.monotonic()
        deadline = started + START_TIMEOUT_S
        log = self.log_dir / "console.log"
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise UserError(f"the {self.name} server exited with code {process.returncode}; see {log}")
            if ready():
                return time.monotonic() - started
            time.sleep(0.2)
        self.down()
        raise UserError(f"the {self.name} server did not answer within {START_TIMEOUT_S:.0f}s; see {log}")

    def down(self, timeout_s: float = 30.0) -> bool:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout_s``); False if it was not running."""
        return stop_process(self._pid(), self.pid_file, timeout_s)


def _answers(url: str) -> bool:
    """True once the server sends any HTTP response to ``url`` (an error status counts)."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def _aws_keys(environ: Mapping[str, str]) -> tuple[str, str] | None:
    key_id = environ.get("AWS_ACCESS_KEY_ID") or ""
    secret = environ.get("AWS_SECRET_ACCESS_KEY") or ""
    if bool(key_id) != bool(secret):
        raise UserError("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither")
    return (key_id, secret) if key_id else None


class CatalogServer(_JavaService):
    """Apache Iceberg's REST catalog server (the RESTCatalogServer fixture of iceberg-open-api,
    through deploy/catalog/LocalRESTCatalogServer.java), backed by a JdbcCatalog on one SQLite file
    under <state_dir>/catalog, so namespaces and tables survive down and up."""

    name = "catalog"
    main_class = CATALOG_MAIN

    def __init__(self, config: Config, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(config, config.catalog_port, environ)
        self.database = self.home / "catalog.db"
        self.uri = f"http://127.0.0.1:{self.port}"
        self.warehouse = _warehouse(config.catalog_warehouse, self.home / "warehouse")

    def _inputs(self) -> list[Path]:
        return [self.deploy_dir / "pom.xml", self.deploy_dir / "LocalRESTCatalogServer.java"]

    def _tools(self) -> tuple[str, ...]:
        return ("java", "javac", "mvn")

    def _after_fetch(self) -> None:
        command = [
            "javac",
            "--release",
            "11",
            "-nowarn",
            "-cp",
            f"{self.lib_dir}/*",
            "-d",
            str(self.lib_dir / "classes"),
            str(self.deploy_dir / "LocalRESTCatalogServer.java"),
        ]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise UserError(
                "compiling the catalog's launcher failed:\n" + (result.stdout + result.stderr)[-3000:]
            )

    def _classpath(self) -> str:
        return f"{self.lib_dir / 'classes'}:{self.lib_dir}/*"

    def _environment(self) -> dict[str, str]:
        """The server's environment: ours, minus any CATALOG_* (the server reads every one of them
        as a catalog property) and AWS keys, plus its configuration."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_") and k not in _AWS_KEYS}
        env.update(
            CATALOG_URI=f"jdbc:sqlite:{self.database}",
            CATALOG_JDBC_STRICT__MODE="true",  # creating a table in a missing namespace is an error
            CATALOG_WAREHOUSE=self.warehouse,
            CATALOG_REST_HOST="127.0.0.1",
            CATALOG_REST_PORT=str(self.port),
        )
        if self.warehouse.startswith("s3://"):
            keys = _aws_keys(self.environ)
            if keys is None:
                raise UserError(
                    f"the warehouse {self.warehouse} needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the "
                    'environment (for the local object store: eval "$(wirestream storage credentials)")'
                )
            # The AWS SDK reads the keys from the environment; as catalog properties they would be
            # served to every client and logged.
            env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = keys
            if self.environ.get("AWS_SESSION_TOKEN"):
                env["AWS_SESSION_TOKEN"] = self.environ["AWS_SESSION_TOKEN"]
            env.update(
                CATALOG_IO__IMPL="org.apache.iceberg.aws.s3.S3FileIO",
                # S3FileIO's own factory needs only the S3 client; the default one loads the KMS,
                # Glue and DynamoDB SDKs too, which deploy/catalog does not fetch.
                CATALOG_S3_CLIENT__FACTORY__IMPL="org.apache.iceberg.aws.s3.DefaultS3FileIOAwsClientFactory",
                CATALOG_CLIENT_REGION=self.environ.get("AWS_REGION") or REGION,
            )
            if self.config.s3_endpoint:
                env["CATALOG_S3_ENDPOINT"] = self.config.s3_endpoint
                env["CATALOG_S3_PATH__STYLE__ACCESS"] = "true"
        return env

    def _settings(self) -> dict[str, Any]:
        s3 = self.warehouse.startswith("s3://") and self.config.s3_endpoint
        return {"uri": self.uri, "warehouse": self.warehouse, "s3_endpoint": s3 or None}

    def status(self) -> ServiceStatus:
        pid = self._pid()
        settings = self._running_settings() if pid is not None else {}
        uri = settings.get("uri", self.uri)
        details = [
            ("uri", uri),
            ("warehouse", settings.get("warehouse", self.warehouse)),
            ("database", str(self.database)),
            ("log file", str(self.log_dir / "console.log")),
            ("clients", f"WIRESTREAM_CATALOG_URI={uri}"),
        ]
        if settings.get("s3_endpoint"):
            details.insert(2, ("s3 endpoint", settings["s3_endpoint"]))
        return ServiceStatus("catalog", pid is not None, pid, details)

    def up(self) -> tuple[bool, float]:
        """Start the catalog and wait until it answers; (started, seconds). Idempotent."""
        if self._already_running():
            return False, 0.0
        self._check_port("--port or WIRESTREAM_CATALOG_PORT")
        env = self._environment()
        self.fetch_jars()
        self.home.mkdir(parents=True, exist_ok=True)
        if self.warehouse.startswith("file://"):
            Path(self.warehouse.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
        properties = (
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
            "-Dorg.slf4j.simpleLogger.log.org.apache.hadoop.util.NativeCodeLoader=error",
        )
        process = self._launch(self._java(*properties), env)
        seconds = self._wait_ready(process, lambda: _answers(f"{self.uri}/v1/config"))
        return True, seconds


def _warehouse(configured: str | None, default: Path) -> str:
    if not configured:
        return f"file://{default.resolve()}"
    if configured.startswith("/"):
        configured = f"file://{configured}"
    if configured.startswith("file:///") or (configured.startswith("s3://") and len(configured) > 5):
        return configured.rstrip("/")
    raise UserError(
        f"warehouse {configured!r}: the local catalog takes file:///absolute/folder or s3://bucket/prefix "
        "(--warehouse or WIRESTREAM_CATALOG_WAREHOUSE)"
    )


class ObjectStore(_JavaService):
    """S3Proxy with its on-disk blob store (filesystem-nio2, the successor of jclouds' filesystem
    store): bucket = folder, object = plain file, under <state_dir>/storage/data."""

    name = "storage"
    main_class = STORAGE_MAIN

    def __init__(self, config: Config, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(config, config.storage_port, environ)
        self.data_dir = self.home / "data"
        self.credentials_file = self.home / "credentials.json"
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.bucket = config.storage_bucket
        self.region = REGION
        if not _BUCKET.match(self.bucket) or ".." in self.bucket:
            raise UserError(
                f"bucket name {self.bucket!r}: use 3-63 lower-case letters, digits, '-' and '.', "
                "starting and ending with a letter or digit"
            )

    def credentials(self) -> tuple[str, str]:
        """The access key id and secret key: from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY when set,
        else generated once and kept in <state_dir>/storage/credentials.json (mode 0600)."""
        keys = _aws_keys(self.environ)
        if keys is None:
            try:
                stored = json.loads(self.credentials_file.read_text("utf-8"))
                keys = (str(stored["access_key_id"]), str(stored["secret_access_key"]))
            except (OSError, ValueError, KeyError, TypeError):
                alphabet = string.ascii_uppercase + string.digits
                key_id = "WS" + "".join(secrets.choice(alphabet) for _ in range(18))
                keys = (key_id, secrets.token_urlsafe(30))
                self.home.mkdir(parents=True, exist_ok=True)
                _write_private(
                    self.credentials_file,
                    json.dumps({"access_key_id": keys[0], "secret_access_key": keys[1]}),
                )
        for value in keys:
            if any(c in value for c in "\\\n\r") or value != value.strip():
                raise UserError(
                    "the object store's keys may not contain backslashes, newlines or surrounding spaces"
                )
        return keys

    def credentials_source(self) -> str:
        if _aws_keys(self.environ) is not None:
            return "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (environment)"
        return str(self.credentials_file)

    def export_lines(self) -> list[str]:
        """Shell lines that point S3 clients (and wirestream) at this store; they hold the secret."""
        key_id, secret = self.credentials()
        return [
            f"export AWS_ACCESS_KEY_ID={shlex.quote(key_id)}",
            f"export AWS_SECRET_ACCESS_KEY={shlex.quote(secret)}",
            f"export AWS_REGION={self.region}",
            f"export WIRESTREAM_S3_ENDPOINT={self.endpoint}",
        ]

    def _settings(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint}

    def status(self) -> ServiceStatus:
        pid = self._pid()
        settings = self._running_settings() if pid is not None else {}
        details = [
            ("endpoint", settings.get("endpoint", self.endpoint)),
            ("bucket", f"s3://{self.bucket}"),
            ("data dir", str(self.data_dir)),
            ("log file", str(self.log_dir / "console.log")),
            ("credentials", self.credentials_source()),
            ("clients", 'eval "$(wirestream storage credentials)" exports the keys and the endpoint'),
        ]
        return ServiceStatus("storage", pid is not None, pid, details)

    def _properties(self) -> str:
        key_id, secret = self.credentials()
        template = (self.deploy_dir / "s3proxy.properties.template").read_text("utf-8")
        return (
            template.replace("${PORT}", str(self.port))
            .replace("${DATA_DIR}", str(self.data_dir.resolve()))
            .replace("${IDENTITY}", key_id)
            .replace("${CREDENTIAL}", secret)
        )

    def up(self) -> tuple[bool, float]:
        """Start the store, wait until it answers and make the bucket; (started, seconds).
        Idempotent: when it runs already, only the bucket is made (if missing)."""
        if self._already_running():
            self.ensure_bucket()
            return False, 0.0
        self._check_port("--port or WIRESTREAM_STORAGE_PORT")
        properties = self._properties()
        self.fetch_jars()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # The rendered properties hold the secret: handed over on stdin, never written to disk.
        command = [*self._java(f"-Dlogback.configurationFile={self.deploy_dir / 'logback.xml'}")]
        command += ["--properties", "/dev/stdin"]
        env = {k: v for k, v in os.environ.items() if k not in _AWS_KEYS}  # it has keys of its own
        process = self._launch(command, env, stdin_text=properties)
        seconds = self._wait_ready(process, lambda: _port_open(self.port) and _answers(self.endpoint + "/"))
        self.ensure_bucket()
        return True, seconds

    def filesystem(self) -> Any:
        """A pyarrow S3FileSystem signed with this store's keys."""
        from pyarrow import fs

        key_id, secret = self.credentials()
        return fs.S3FileSystem(
            access_key=key_id,
            secret_key=secret,
            endpoint_override=self.endpoint,
            scheme="http",
            region=self.region,
            allow_bucket_creation=True,
            connect_timeout=5,
            request_timeout=30,
        )

    def ensure_bucket(self) -> bool:
        """Create the bucket if it is missing; True if it was created."""
        from pyarrow import fs

        s3 = self.filesystem()
        try:
            if s3.get_file_info(self.bucket).type != fs.FileType.NotFound:
                return False
            s3.create_dir(self.bucket)
        except OSError as exc:
            raise UserError(
                f"creating bucket {self.bucket!r} in the object store at {self.endpoint} failed "
                f"(are its keys the ones it was started with?): {exc}"
            ) from None
        return True


# -- command line -------------------------------------------------------------------------------


def add_parsers(commands: Any, common: Callable[..., None]) -> None:
    """The `catalog` and `storage` commands, under the CLI's subcommands."""
    catalog = commands.add_parser("catalog", help="run the local Iceberg REST catalog")
    catalog_actions = catalog.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (
        ("up", "start it (idempotent)"),
        ("status", "show pid, address, warehouse, database and log paths"),
        ("down", "stop it"),
    ):
        sub = catalog_actions.add_parser(action, help=text)
        common(sub, kafka=False)
        sub.add_argument("--port", type=int, help="catalog port (default 8181, env WIRESTREAM_CATALOG_PORT)")
        sub.add_argument(
            "--warehouse",
            metavar="URI",
            help="file:///folder or s3://bucket/prefix (default file://<state_dir>/catalog/warehouse; "
            "s3:// uses s3_endpoint and the AWS_* keys from the environment)",
        )

    storage = commands.add_parser("storage", help="run the local S3-compatible object store (S3Proxy)")
    storage_actions = storage.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (
        ("up", "start it and create the bucket (idempotent)"),
        ("status", "show pid, endpoint, bucket, data and log paths"),
        ("down", "stop it"),
        ("credentials", "print `export` lines for its keys and endpoint (prints the secret key)"),
    ):
        sub = storage_actions.add_parser(action, help=text)
        common(sub, kafka=False)
        sub.add_argument("--port", type=int, help="store port (default 9000, env WIRESTREAM_STORAGE_PORT)")
        sub.add_argument(
            "--bucket", help="bucket `up` creates (default wirestream, env WIRESTREAM_STORAGE_BUCKET)"
        )


def run(args: argparse.Namespace, load: Callable[..., Config]) -> int:
    """Run a `catalog` or `storage` action; ``load`` is the CLI's config loader (flags > env > file)."""
    service: CatalogServer | ObjectStore
    if args.command == "catalog":
        service = CatalogServer(load(args, catalog_port=args.port, catalog_warehouse=args.warehouse))
        address = service.uri
    else:
        service = ObjectStore(load(args, storage_port=args.port, storage_bucket=args.bucket))
        address = service.endpoint
        if args.action == "credentials":
            for line in service.export_lines():
                print(line)
            return 0
    what = "iceberg rest catalog" if args.command == "catalog" else "object store"
    if args.action == "up":
        started, seconds = service.up()
        if started:
            print(f"{what} started on {address} in {seconds:.1f}s")
        else:
            print(f"{what} already running on {address} (pid {service.status().pid}); nothing to do")
    elif args.action == "down":
        print(f"{what} stopped" if service.down() else f"{what} was not running")
        return 0
    status = service.status()
    for line in status.lines():
        print(line)
    return 0 if status.running else 3

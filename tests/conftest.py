"""Shared fixtures: the seed story, and a real Kafka broker started with `wirestream kafka up`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from wirestream.config import Config

REPO = Path(__file__).resolve().parent.parent
SEED = Path(os.environ.get("WIRESTREAM_SEED", REPO.parent / "shared" / "seeds" / "turan-blinken-lavrov.txt"))
SAMPLES = REPO / "wirestream" / "samples"
# The test infrastructure's own settings: the session broker's port, and the shared jar cache (where
# the local servers' jars are, not how wirestream behaves). Every other WIRESTREAM_* of the caller's
# shell is removed for the session, so no test reads it.
TEST_INFRA_VARIABLES = frozenset({"WIRESTREAM_TEST_BROKER_PORT", "WIRESTREAM_CACHE_DIR"})


def clean_environ() -> dict[str, str]:
    """This process's environment without the caller's wirestream settings."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("WIRESTREAM_") or name in TEST_INFRA_VARIABLES
    }


@pytest.fixture(scope="session", autouse=True)
def _no_caller_settings():  # type: ignore[no-untyped-def]
    """Tests see only the WIRESTREAM_* variables they set themselves."""
    with pytest.MonkeyPatch.context() as patch:
        for name in set(os.environ) - clean_environ().keys():
            patch.delenv(name)
        yield


def wirestream(
    *args: str, env: dict[str, str] | None = None, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as a user would, with none of the caller's wirestream
    settings: only those in ``env``."""
    result = subprocess.run(
        [sys.executable, "-m", "wirestream", *args],
        capture_output=True,
        text=True,
        env={**clean_environ(), **(env or {})},
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"wirestream {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


@pytest.fixture(scope="session")
def seed_path() -> Path:
    assert SEED.is_file(), f"seed story not found at {SEED} (set WIRESTREAM_SEED)"
    return SEED


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real single-node KRaft broker for the whole session, on its own port and data folder."""
    port = os.environ.get("WIRESTREAM_TEST_BROKER_PORT", "39092")
    state = tmp_path_factory.mktemp("broker-state")
    env = {"WIRESTREAM_BROKER_CONTROLLER_PORT": str(int(port) + 1)}
    wirestream("kafka", "up", "--port", port, "--state-dir", str(state), env=env)
    try:
        yield {"bootstrap": f"127.0.0.1:{port}", "state_dir": str(state), "port": port, "env": env}
    finally:
        from pipeline.kafka_source import CONSUMERS
        from pipeline.workers import WORKERS

        # Kept consumers, this process's and its workers', would log the broker's absence.
        CONSUMERS.close_idle()
        WORKERS.close()
        wirestream("kafka", "down", "--port", port, "--state-dir", str(state), env=env, check=False)


@pytest.fixture
def kafka_config(broker, tmp_path: Path) -> Config:  # type: ignore[no-untyped-def]
    """A config with topics and folders of this test's own, so tests never see each other's data."""
    tag = uuid.uuid4().hex[:10]
    return Config(
        bootstrap_servers=broker["bootstrap"],
        raw_topic=f"test-{tag}.raw",
        dlq_topic=f"test-{tag}.dlq",
        state_dir=str(tmp_path / "state"),
        output=str(tmp_path / "out"),
    )


def env_for(config: Config) -> dict[str, str]:
    """The same config as WIRESTREAM_* environment variables, for CLI subprocesses."""
    return {
        "WIRESTREAM_BOOTSTRAP_SERVERS": config.bootstrap_servers,
        "WIRESTREAM_RAW_TOPIC": config.raw_topic,
        "WIRESTREAM_DLQ_TOPIC": config.dlq_topic,
        "WIRESTREAM_STATE_DIR": config.state_dir,
    }


def chunks(items: list, size: int) -> list[list]:
    """``items`` in chunks of at most ``size``: how the stages receive stories."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def raw_story(
    index: int, source: str = "synthetic", words: int = 60, when: str = "2022-07-29T12:00:00Z"
) -> dict:
    """A valid raw message with its own text, so no two synthetic stories are copies."""
    from schemas import RAW_SCHEMA_VERSION, story_id

    body = " ".join(f"word{(index * 7919 + k * 104729) % 1000003}" for k in range(words))
    return {
        "schema_version": RAW_SCHEMA_VERSION,
        "id": story_id(source, f"story-{index}"),
        "source": source,
        "uri": f"story-{index}",
        "headline": f"Synthetic story {index}",
        "body": f"Story number {index} says: {body}.",
        "body_format": "text/plain",
        "firstcreated": when,
        "fetched_at": when,
    }


def publish_raw(config: Config, stories: list[dict], timestamp_ms: int | None = None) -> list[str]:
    """Publish raw messages the way the connectors do (keyed by id, acks=all); returns acknowledged ids."""
    import json

    from kafka import KafkaProducer

    from connectors.publisher import ensure_topics

    ensure_topics(config, [config.raw_topic, config.dlq_topic])
    producer = KafkaProducer(bootstrap_servers=config.bootstrap_servers, acks="all", linger_ms=5)
    futures = [
        (
            s["id"],
            producer.send(
                config.raw_topic,
                key=s["id"].encode(),
                value=json.dumps(s).encode(),
                timestamp_ms=timestamp_ms,
            ),
        )
        for s in stories
    ]
    acked = [story_id for story_id, future in futures if future.get(timeout=60)]
    producer.close()
    return acked


def wait_for(condition: Callable[[], object], timeout_s: float = 60.0, what: str = "condition") -> None:
    """Poll with a deadline instead of sleeping a fixed time."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s}s waiting for {what}"
        time.sleep(0.2)


def table_rows(output: str | Path) -> list[dict]:
    """The committed stories as every reader users use sees them, checked to agree: pyiceberg's
    scan, DuckDB's iceberg_scan and polars' scan_iceberg over the table, and a plain pyarrow read of
    exactly the files the current snapshot lists. Sorted by id."""
    import duckdb
    import polars as pl
    import pyarrow.parquet as pq

    from pipeline.dataset import Dataset
    from pipeline.storage import local_path

    dataset = Dataset(output)
    if not dataset.exists():
        return []
    table = dataset.table()
    scanned = table.scan().to_arrow().to_pylist() if table.current_snapshot() else []
    ids = sorted(r["id"] for r in scanned)
    # Every reader reads the one snapshot ``table`` holds: a run may commit meanwhile.
    files = (
        [str(local_path(t.file.file_path)) for t in table.scan().plan_files()]
        if table.current_snapshot()
        else []
    )
    plain = sorted(pq.read_table(files, columns=["id"]).column("id").to_pylist()) if files else []
    assert plain == ids, "the snapshot's files read with pyarrow differ from pyiceberg's scan"
    if table.current_snapshot():
        with duckdb.connect(config={"allow_unsigned_extensions": "false"}) as con:
            con.execute(f"SET extension_directory = '{_duckdb_extensions()}'")
            con.execute("LOAD iceberg")
            found = con.execute(
                f"SELECT id FROM iceberg_scan('{table.metadata_location}') ORDER BY id"
            ).fetchall()
        assert [r[0] for r in found] == ids, "DuckDB's iceberg_scan differs from pyiceberg's scan"
        assert sorted(pl.scan_iceberg(table).select("id").collect()["id"].to_list()) == ids
    return sorted(scanned, key=lambda r: r["id"])


def _duckdb_extensions() -> str:
    """Where the duckdb-ext-* wheels put DuckDB's extensions (no download at run time)."""
    import importlib.util

    spec = importlib.util.find_spec("duckdb_ext")
    assert spec is not None and spec.submodule_search_locations, "duckdb-ext-iceberg is not installed"
    return str(Path(next(iter(spec.submodule_search_locations))) / "extensions")


# -- the local object store and Iceberg REST catalog (`wirestream storage` / `wirestream catalog`) --


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_config(state_dir: Path, **overrides: object) -> Config:
    """A config for the local services from the defaults only (the caller's WIRESTREAM_* settings
    are not read), sharing the jar cache (WIRESTREAM_CACHE_DIR if set, as `make` does)."""
    import dataclasses

    base = Config()
    cache_dir = os.environ.get("WIRESTREAM_CACHE_DIR") or base.cache_dir
    return dataclasses.replace(base, state_dir=str(state_dir), cache_dir=cache_dir, **overrides)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ObjectStoreHandle:
    """The session's S3Proxy: where it is, its bucket and keys, and where it keeps the objects."""

    endpoint: str
    bucket: str
    access_key_id: str
    secret_access_key: str
    region: str
    data_dir: Path

    def s3_properties(self) -> dict[str, str]:
        """pyiceberg FileIO properties for this store."""
        return {
            "s3.endpoint": self.endpoint,
            "s3.access-key-id": self.access_key_id,
            "s3.secret-access-key": self.secret_access_key,
            "s3.region": self.region,
            "s3.path-style-access": "true",
        }

    def env(self) -> dict[str, str]:
        """Environment for processes that use the store (wirestream reads the keys only from here)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_REGION": self.region,
            "WIRESTREAM_S3_ENDPOINT": self.endpoint,
        }

    def local_path(self, uri: str) -> Path:
        """The file S3Proxy keeps for ``s3://bucket/key``."""
        assert uri.startswith("s3://"), uri
        return self.data_dir / uri.removeprefix("s3://")


@dataclass(frozen=True)
class RestCatalogHandle:
    """The session's Iceberg REST catalog, its warehouse on the session's object store."""

    uri: str
    warehouse: str
    store: ObjectStoreHandle

    def properties(self) -> dict[str, str]:
        return {"uri": self.uri, **self.store.s3_properties()}

    def catalog(self, name: str = "test") -> Any:
        from pyiceberg.catalog.rest import RestCatalog

        return RestCatalog(name, **self.properties())

    def env(self) -> dict[str, str]:
        """Environment for wirestream commands that should use this catalog."""
        return {
            **self.store.env(),
            "WIRESTREAM_CATALOG_URI": self.uri,
            "WIRESTREAM_CATALOG_WAREHOUSE": self.warehouse,
        }


@pytest.fixture(scope="session")
def object_store(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real S3Proxy for the whole session (`wirestream storage up`), on a free port, with keys of
    its own (generated: the caller's AWS_* variables are not used)."""
    from wirestream.services import ObjectStore

    state = tmp_path_factory.mktemp("storage-state")
    store = ObjectStore(service_config(state, storage_port=free_port()), environ={})
    try:
        store.up()
        key_id, secret = store.credentials()
        yield ObjectStoreHandle(store.endpoint, store.bucket, key_id, secret, store.region, store.data_dir)
    finally:
        store.down()


@pytest.fixture(scope="session")
def rest_catalog(object_store: ObjectStoreHandle, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real Iceberg REST catalog for the whole session (`wirestream catalog up`), its warehouse
    at s3://<bucket>/warehouse on the session's object store."""
    from wirestream.services import CatalogServer

    state = tmp_path_factory.mktemp("catalog-state")
    config = service_config(
        state,
        catalog_port=free_port(),
        catalog_warehouse=f"s3://{object_store.bucket}/warehouse",
        s3_endpoint=object_store.endpoint,
    )
    server = CatalogServer(config, environ=object_store.env())
    try:
        server.up()
        yield RestCatalogHandle(server.uri, server.warehouse, object_store)
    finally:
        server.down()

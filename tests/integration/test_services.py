"""`wirestream storage` (S3Proxy) and `wirestream catalog` (Iceberg's REST catalog server): real
processes started from deploy/storage and deploy/catalog, a real Iceberg table on S3 through them."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog.rest import RestCatalog

from tests.conftest import ObjectStoreHandle, RestCatalogHandle, free_port, service_config
from wirestream.broker import _port_open
from wirestream.services import CatalogServer, ObjectStore

pytestmark = pytest.mark.integration

ROWS = pa.table(
    {
        "id": pa.array(["a", "b", "c"], pa.string()),
        "words": pa.array([3, 1, 4], pa.int64()),
    }
)


def test_a_table_on_s3_through_the_rest_catalog(tmp_path):
    state = tmp_path / "state"
    store = ObjectStore(service_config(state, storage_port=free_port(), storage_bucket="lake"), environ={})
    server: CatalogServer | None = None
    try:
        started, _ = store.up()
        assert started and (store.data_dir / "lake").is_dir(), "up creates the bucket"
        assert store.up() == (False, 0.0), "up is idempotent"
        key_id, secret = store.credentials()
        assert (state / "storage" / "credentials.json").stat().st_mode & 0o777 == 0o600
        config = service_config(
            state,
            catalog_port=free_port(),
            catalog_warehouse="s3://lake/warehouse",
            s3_endpoint=store.endpoint,
        )
        keys = {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret}
        server = CatalogServer(config, environ=keys)
        assert server.up()[0]
        assert server.up() == (False, 0.0)

        catalog = RestCatalog(
            "t",
            uri=server.uri,
            **{
                "s3.endpoint": store.endpoint,
                "s3.access-key-id": key_id,
                "s3.secret-access-key": secret,
                "s3.region": "us-east-1",
                "s3.path-style-access": "true",
            },
        )
        catalog.create_namespace("news")
        table = catalog.create_table("news.stories", schema=ROWS.schema, location="s3://lake/tables/stories")
        table.append(ROWS)

        read = catalog.load_table("news.stories").scan().to_arrow()
        assert sorted(read.to_pylist(), key=lambda r: r["id"]) == ROWS.to_pylist()
        files = [task.file.file_path for task in table.scan().plan_files()]
        assert len(files) == 1 and files[0].startswith("s3://lake/tables/stories/data/")
        on_disk = store.data_dir / files[0].removeprefix("s3://")
        assert on_disk.is_file(), "the data file is a plain file in S3Proxy's folder"
        assert pq.read_table(on_disk).num_rows == 3
        # The catalog server wrote the metadata through S3FileIO, into the same store.
        metadata = catalog.load_table("news.stories").metadata_location
        assert (store.data_dir / metadata.removeprefix("s3://")).is_file()

        log = (state / "catalog" / "logs" / "console.log").read_text()
        assert secret not in log and secret not in (state / "storage" / "logs" / "console.log").read_text()
    finally:
        if server is not None:
            server.down()
        store.down()
    assert server is not None
    assert not _port_open(server.port) and not _port_open(store.port)
    assert not server.status().running and not store.status().running


def cli(*args: str, state: Path, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI, with none of the caller's WIRESTREAM_*, AWS_* or CATALOG_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WIRESTREAM_", "AWS_", "CATALOG_"))}
    env["WIRESTREAM_CACHE_DIR"] = service_config(state).cache_dir
    env["WIRESTREAM_STATE_DIR"] = str(state)
    env.update(extra or {})
    return subprocess.run(
        [sys.executable, "-m", "wirestream", *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_the_commands_and_a_catalog_that_survives_down_and_up(tmp_path):
    state = tmp_path / "state"
    storage_port, catalog_port = str(free_port()), str(free_port())
    try:
        up = cli("storage", "up", "--port", storage_port, state=state)
        assert up.returncode == 0, up.stderr
        assert "started" in up.stdout and f"http://127.0.0.1:{storage_port}" in up.stdout
        status = cli("storage", "status", "--port", storage_port, state=state)
        assert status.returncode == 0 and "running (pid" in status.stdout
        exports = cli("storage", "credentials", "--port", storage_port, state=state).stdout
        stored = ObjectStore(service_config(state, storage_port=int(storage_port)), environ={})
        key_id, secret = stored.credentials()
        assert f"export AWS_ACCESS_KEY_ID={key_id}" in exports and secret in exports
        assert f"export WIRESTREAM_S3_ENDPOINT=http://127.0.0.1:{storage_port}" in exports
        assert secret not in status.stdout + up.stdout, "only `credentials` prints the secret"

        # The catalog on its default warehouse, a folder under the state dir.
        assert cli("catalog", "up", "--port", catalog_port, state=state).returncode == 0
        again = cli("catalog", "up", "--port", catalog_port, state=state)
        assert "already running" in again.stdout
        moved = cli("catalog", "up", "--port", catalog_port, "--warehouse", str(tmp_path / "wh"), state=state)
        assert moved.returncode == 2 and "already runs" in moved.stderr and "down` first" in moved.stderr
        uri = f"http://127.0.0.1:{catalog_port}"
        with urllib.request.urlopen(f"{uri}/v1/config", timeout=10) as response:
            assert response.status == 200
        namespace = f"ns_{uuid.uuid4().hex[:8]}"
        RestCatalog("t", uri=uri).create_namespace(namespace)
        assert "stopped" in cli("catalog", "down", state=state).stdout
        assert cli("catalog", "status", "--port", catalog_port, state=state).returncode == 3
        assert not _port_open(int(catalog_port))
        assert cli("catalog", "up", "--port", catalog_port, state=state).returncode == 0
        assert (namespace,) in RestCatalog("t", uri=uri).list_namespaces(), "the JDBC catalog is kept"
        assert (state / "catalog" / "catalog.db").is_file()

        # Mistakes are one line (another state dir: nothing of it runs).
        other = tmp_path / "other"
        bad = cli("catalog", "up", "--port", str(free_port()), "--warehouse", "s3://lake/x", state=other)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "AWS_ACCESS_KEY_ID" in bad.stderr
        taken = cli("catalog", "up", "--port", storage_port, state=other)
        assert taken.returncode == 2 and "already in use" in taken.stderr
    finally:
        cli("catalog", "down", state=state)
        cli("storage", "down", state=state)
    assert cli("storage", "status", "--port", storage_port, state=state).returncode == 3
    assert not _port_open(int(storage_port)) and not _port_open(int(catalog_port))


def test_the_session_fixtures(rest_catalog: RestCatalogHandle, object_store: ObjectStoreHandle):
    catalog = rest_catalog.catalog()
    namespace = f"fixture_{uuid.uuid4().hex[:8]}"
    catalog.create_namespace(namespace)
    table = catalog.create_table(f"{namespace}.rows", schema=ROWS.schema)
    table.append(ROWS)
    assert table.location().startswith(f"{rest_catalog.warehouse}/")
    (data_file,) = [task.file.file_path for task in table.scan().plan_files()]
    assert object_store.local_path(data_file).is_file()
    assert catalog.load_table(f"{namespace}.rows").scan().to_arrow().num_rows == 3

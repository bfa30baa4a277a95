"""The local catalog's and object store's settings, keys and commands, without starting them."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import free_port, service_config
from wirestream.cli import main
from wirestream.errors import UserError
from wirestream.services import CatalogServer, ObjectStore


def test_the_warehouse_defaults_to_a_folder_in_the_state_dir(tmp_path):
    server = CatalogServer(service_config(tmp_path))
    assert server.warehouse == f"file://{(tmp_path / 'catalog' / 'warehouse').resolve()}"
    assert server.uri == "http://127.0.0.1:8181"
    assert (
        CatalogServer(service_config(tmp_path, catalog_warehouse="/data/wh/")).warehouse == "file:///data/wh"
    )
    s3 = CatalogServer(service_config(tmp_path, catalog_warehouse="s3://lake/wh/"))
    assert s3.warehouse == "s3://lake/wh"
    for bad in ("relative/wh", "s3://", "hdfs://nn/wh", "file://relative"):
        with pytest.raises(UserError, match="file:///absolute/folder or s3://bucket/prefix"):
            CatalogServer(service_config(tmp_path, catalog_warehouse=bad))
    with pytest.raises(UserError, match="not a TCP port"):
        CatalogServer(service_config(tmp_path, catalog_port=70000))


def test_the_catalog_gets_its_keys_from_the_environment_only(tmp_path, monkeypatch):
    # A caller's own CATALOG_* settings do not move the local catalog's warehouse.
    monkeypatch.setenv("CATALOG_WAREHOUSE", "s3://someone-elses/warehouse")
    local = CatalogServer(service_config(tmp_path, catalog_port=free_port()))
    assert local.warehouse.startswith("file://")

    # An S3 warehouse without keys in the environment is refused before anything is fetched or started.
    config = service_config(
        tmp_path,
        catalog_port=free_port(),
        catalog_warehouse="s3://lake/wh",
        s3_endpoint="http://127.0.0.1:9000",
    )
    with pytest.raises(UserError, match="needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        CatalogServer(config, environ={}).up()
    assert not (tmp_path / "catalog" / "catalog.pid").exists()


def test_store_keys_are_generated_once_and_kept_private(tmp_path):
    store = ObjectStore(service_config(tmp_path), environ={})
    key_id, secret = store.credentials()
    assert store.credentials() == (key_id, secret)
    file = tmp_path / "storage" / "credentials.json"
    assert file.stat().st_mode & 0o777 == 0o600
    assert json.loads(file.read_text()) == {"access_key_id": key_id, "secret_access_key": secret}
    assert store.export_lines()[:2] == [
        f"export AWS_ACCESS_KEY_ID={key_id}",
        f"export AWS_SECRET_ACCESS_KEY={secret}",
    ]
    assert store.export_lines()[-1] == "export WIRESTREAM_S3_ENDPOINT=http://127.0.0.1:9000"
    assert store.credentials_source() == str(file)


def test_store_keys_from_the_environment_win_and_are_not_written(tmp_path):
    env = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "it's secret"}
    store = ObjectStore(service_config(tmp_path), environ=env)
    assert store.credentials() == ("AKID", "it's secret")
    assert not (tmp_path / "storage" / "credentials.json").exists()
    assert "export AWS_SECRET_ACCESS_KEY='it'\"'\"'s secret'" in store.export_lines()
    assert "environment" in store.credentials_source()
    with pytest.raises(UserError, match="set both"):
        ObjectStore(service_config(tmp_path), environ={"AWS_ACCESS_KEY_ID": "AKID"}).credentials()
    with pytest.raises(UserError, match="backslashes"):
        ObjectStore(service_config(tmp_path), environ={**env, "AWS_SECRET_ACCESS_KEY": "a\\b"}).credentials()


@pytest.mark.parametrize("bucket", ["ab", "Upper", "under_score", "-dash", "a..b", "x" * 64])
def test_bucket_names_follow_s3_rules(tmp_path, bucket):
    with pytest.raises(UserError, match="bucket name"):
        ObjectStore(service_config(tmp_path, storage_bucket=bucket))


def test_status_of_services_that_do_not_run(tmp_path, capsys, monkeypatch):
    for name in list(os.environ):
        if name.startswith(("WIRESTREAM_", "AWS_")):
            monkeypatch.delenv(name)
    state = ["--state-dir", str(tmp_path)]
    assert main(["catalog", "status", "--port", str(free_port()), *state]) == 3
    assert "catalog     not running" in capsys.readouterr().out
    assert main(["storage", "status", *state]) == 3
    out = capsys.readouterr().out
    assert "storage     not running" in out and "credentials" in out
    assert main(["catalog", "down", *state]) == 0
    assert "was not running" in capsys.readouterr().out

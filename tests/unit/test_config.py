import pytest

from wirestream.config import Config, load_config
from wirestream.errors import UserError


def test_defaults():
    config = load_config()
    assert config.bootstrap_servers == "127.0.0.1:9092"
    assert config.raw_topic == "news.raw.v1"


def test_file_then_environment_then_flags(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text(
        "bootstrap_servers: file:9092\nbroker_port: 1234\nallow_private_networks: false\nrunner: direct\n"
    )
    assert load_config(path).bootstrap_servers == "file:9092"
    monkeypatch.setenv("WIRESTREAM_BOOTSTRAP_SERVERS", "env:9092")
    monkeypatch.setenv("WIRESTREAM_ALLOW_PRIVATE_NETWORKS", "yes")
    config = load_config(path)
    assert (config.bootstrap_servers, config.broker_port, config.allow_private_networks) == (
        "env:9092",
        1234,
        True,
    )
    assert load_config(path, {"bootstrap_servers": "flag:9092"}).bootstrap_servers == "flag:9092"


def test_unknown_keys_and_bad_values_are_user_errors(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("bootstrap_server: typo\n")
    with pytest.raises(UserError, match="unknown keys \\['bootstrap_server'\\]"):
        load_config(path)
    monkeypatch.setenv("WIRESTREAM_BROKER_PORT", "ninety")
    with pytest.raises(UserError, match="broker_port"):
        load_config()
    with pytest.raises(UserError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    monkeypatch.delenv("WIRESTREAM_BROKER_PORT")
    monkeypatch.setenv("WIRESTREAM_WORKERS", "-1")
    with pytest.raises(UserError, match="'workers': -1 is negative"):
        load_config()
    monkeypatch.setenv("WIRESTREAM_WORKERS", "0")
    assert load_config().workers == 0


def test_secrets_are_redacted():
    config = Config(sasl_password="hunter2", sasl_mechanism="PLAIN", sasl_username="u")
    assert "hunter2" not in repr(config.redacted())
    assert config.kafka_client_options()["sasl_plain_password"] == "hunter2"


def test_secrets_never_appear_in_repr():
    assert "hunter2" not in repr(Config(sasl_password="hunter2"))

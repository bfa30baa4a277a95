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


def test_config_files_that_cannot_be_read_are_one_line(tmp_path):
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes("raw_topic: actualités\n".encode("latin-1"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("raw_topic: [unclosed\n")
    for path, message in [
        (tmp_path, f"config file {tmp_path} is a folder, not a file"),
        (latin, f"config file {latin} is not UTF-8 text (invalid continuation byte at byte 19)"),
        (
            broken,
            f"config file {broken} is not valid YAML: expected ',' or ']', but got '<stream end>' "
            "(line 2, column 1)",
        ),
    ]:
        with pytest.raises(UserError) as caught:
            load_config(path)
        assert str(caught.value) == message


def test_the_callers_settings_do_not_reach_the_tests():
    """The session removes the caller's WIRESTREAM_* (tests/conftest.py): defaults are defaults."""
    import os

    seen = {name for name in os.environ if name.startswith("WIRESTREAM_")}
    assert seen <= {"WIRESTREAM_TEST_BROKER_PORT", "WIRESTREAM_CACHE_DIR"}
    loaded = load_config()
    assert loaded == Config(cache_dir=loaded.cache_dir)  # the jar cache is the test infra's

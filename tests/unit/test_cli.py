"""User mistakes end in one clear line and a non-zero exit code, never a traceback."""

import socket

from tests.conftest import wirestream


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unknown_flag():
    result = wirestream("run", "--no-such-flag", check=False)
    assert result.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file(tmp_path):
    result = wirestream(
        "connect",
        "files",
        str(tmp_path / "nope.txt"),
        "--bootstrap-servers",
        f"127.0.0.1:{free_port()}",
        "--state-dir",
        str(tmp_path),
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "error:" in result.stderr


def test_broker_not_reachable(tmp_path, seed_path):
    port = free_port()
    result = wirestream(
        "connect",
        "files",
        str(seed_path),
        "--bootstrap-servers",
        f"127.0.0.1:{port}",
        "--state-dir",
        str(tmp_path),
        check=False,
    )
    assert result.returncode == 2
    # One line once the client gives up: kafka-python's own retry logs are kept to -v.
    assert result.stderr.splitlines() == [
        f"error: cannot reach Kafka at 127.0.0.1:{port} (KafkaTimeoutError). Start the local broker with "
        "`wirestream kafka up`, or pass --bootstrap-servers / set WIRESTREAM_BOOTSTRAP_SERVERS."
    ]
    assert list(tmp_path.iterdir()) == []  # the state dir: nothing recorded for a story never sent


def test_run_without_output_folder(tmp_path):
    result = wirestream("run", "--state-dir", str(tmp_path), check=False, env={"WIRESTREAM_OUTPUT": ""})
    assert result.returncode == 2
    assert "no output folder" in result.stderr


def test_inspect_of_a_missing_dataset(tmp_path):
    result = wirestream("inspect", str(tmp_path / "none"), check=False)
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_bad_config_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("bootstrap_servers: [unclosed\n")
    result = wirestream("run", "--config", str(path), "--output", str(tmp_path / "o"), check=False)
    assert result.returncode == 2 and "not valid YAML" in result.stderr

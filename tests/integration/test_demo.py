"""The demo command end to end: bundled feeds over local HTTP, real broker, Beam, the Iceberg table."""

import socket

import pytest
import yaml

from tests.conftest import SAMPLES, env_for, free_port, table_rows, wirestream


def test_demo_publishes_processes_and_summarises(kafka_config, tmp_path):
    out = tmp_path / "demo"
    result = wirestream("demo", "--output", str(out), env=env_for(kafka_config))
    expected = yaml.safe_load((SAMPLES / "expected.yaml").read_text("utf-8"))
    stories = {guid: e for guid, e in expected["stories"].items() if not e.get("dead_letter")}
    assert f"published {len(stories)}, dead-lettered 1" in result.stdout
    assert f"stories written      {len(stories)}" in result.stdout
    # The story the connector refused counts among the dead letters, beside the pipeline's.
    lines = result.stdout.splitlines()
    pipeline_letters = int(next(x for x in lines if x.startswith("  by the pipeline")).split()[3])
    assert f"dead letters         {1 + pipeline_letters}" in lines
    assert f"  by the connectors  1  (refused this run; topic {kafka_config.dlq_topic})" in lines
    assert "grain_deal" in result.stdout

    rows = [
        (r["uri"], r["url"], r["headline"], r["duplicate_of"], [t["topic"] for t in r["topics"] or []])
        for r in table_rows(out)
    ]
    assert len(rows) == len(stories)
    by_guid = {(r[0] or r[1]): r for r in rows}
    for guid, story in stories.items():
        row = by_guid[guid]
        assert set(row[4]) == set(story["topics"]), (guid, row[2], row[4])
        assert (row[3] is not None) == bool(story.get("duplicate_of_guid")), guid

    # A second demo finds everything already published and committed.
    again = wirestream("demo", "--output", str(out), env=env_for(kafka_config))
    assert "published 0," in again.stdout and "nothing new" in again.stdout


def cluster_id(status_stdout: str) -> str:
    return next(x for x in status_stdout.splitlines() if x.startswith("cluster id")).split()[-1]


@pytest.fixture(scope="module")
def own_broker_demo(tmp_path_factory):
    """`wirestream demo --port P` with no Kafka settings: it starts a broker of its own on P."""
    state = tmp_path_factory.mktemp("demo-state")
    port = free_port()
    env = {"WIRESTREAM_BROKER_CONTROLLER_PORT": str(free_port()), "WIRESTREAM_BROKER_SASL_PORT": "0"}
    output = state / "out"
    result = wirestream(
        "demo", "--port", str(port), "--state-dir", str(state), "--output", str(output), env=env
    )
    return {"result": result, "state": state, "port": port, "env": env, "output": output}


def test_demo_stops_the_broker_it_started(own_broker_demo):
    port, state = own_broker_demo["port"], own_broker_demo["state"]
    stdout = own_broker_demo["result"].stdout
    assert f"on 127.0.0.1:{port}" in stdout.splitlines()[0] and "started in" in stdout.splitlines()[0]
    assert stdout.splitlines()[-1] == (
        f"broker: stopped (pass --keep-broker to leave it running on 127.0.0.1:{port})"
    )
    assert len(table_rows(own_broker_demo["output"])) > 0
    status = wirestream(
        "kafka",
        "status",
        "--port",
        str(port),
        "--state-dir",
        str(state),
        env=own_broker_demo["env"],
        check=False,
    )
    assert status.returncode == 3 and status.stdout.startswith("broker      not running")
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the demo's broker still listens"


def test_a_different_cluster_on_the_local_port_is_refused(own_broker_demo, broker, tmp_path):
    """The demo's state dir records its broker's cluster; another cluster at its address (here the
    session's broker) is refused in one line instead of read."""
    state = own_broker_demo["state"]
    ours = cluster_id(
        wirestream(
            "kafka", "status", "--port", str(own_broker_demo["port"]), "--state-dir", str(state), check=False
        ).stdout
    )
    theirs = cluster_id(
        wirestream("kafka", "status", "--port", broker["port"], "--state-dir", broker["state_dir"]).stdout
    )
    assert ours != theirs
    env = {
        "WIRESTREAM_BROKER_PORT": broker["port"],
        "WIRESTREAM_BOOTSTRAP_SERVERS": f"127.0.0.1:{broker['port']}",
    }
    result = wirestream(
        "run", "--state-dir", str(state), "--output", str(tmp_path / "out"), env=env, check=False
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: the Kafka at 127.0.0.1:{broker['port']} is cluster {theirs}, not the local broker of "
        f"{state} (cluster {ours}); pass --bootstrap-servers to read it, or --port/WIRESTREAM_BROKER_PORT "
        "to use the local broker on another port\n"
    )
    assert not (tmp_path / "out").exists()

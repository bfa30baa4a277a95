"""`wirestream kafka up/status/down` against the real broker the session started."""

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tests.conftest import free_port, wirestream


def test_up_is_idempotent_and_status_prints_the_log(broker):
    args = ["--port", broker["port"], "--state-dir", broker["state_dir"]]
    again = wirestream("kafka", "up", *args, env=broker["env"])
    assert "already running" in again.stdout
    status = wirestream("kafka", "status", *args, env=broker["env"])
    assert "running (pid" in status.stdout
    assert "server.log" in status.stdout


def test_data_survives_down_and_up(broker):
    args = ["--port", broker["port"], "--state-dir", broker["state_dir"]]
    producer = KafkaProducer(bootstrap_servers=broker["bootstrap"], acks="all")
    producer.send("survives-restart", key=b"k", value=b"kept", partition=0).get(30)
    producer.close()
    assert "stopped" in wirestream("kafka", "down", *args, env=broker["env"]).stdout
    assert wirestream("kafka", "status", *args, env=broker["env"], check=False).returncode == 3
    assert "started" in wirestream("kafka", "up", *args, env=broker["env"]).stdout
    consumer = KafkaConsumer(bootstrap_servers=broker["bootstrap"], enable_auto_commit=False)
    tp = TopicPartition("survives-restart", 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    records = consumer.poll(timeout_ms=10000).get(tp, [])
    consumer.close()
    assert [r.value for r in records] == [b"kept"]


def test_status_down_and_up_speak_of_the_port_asked_for(broker):
    other = free_port()
    args = ["--port", str(other), "--state-dir", broker["state_dir"]]
    status = wirestream("kafka", "status", *args, env=broker["env"], check=False)
    assert status.returncode == 3
    assert status.stdout.splitlines()[0] == (
        f"broker      not running on this port (this state dir's broker runs on port {broker['port']})"
    )
    down = wirestream("kafka", "down", *args, env=broker["env"])
    assert down.stdout == (
        f"kafka broker was not running on 127.0.0.1:{other} "
        f"(this state dir's broker runs on port {broker['port']})\n"
    )
    up = wirestream("kafka", "up", *args, env=broker["env"], check=False)
    assert (up.returncode, up.stdout) == (2, "")
    assert up.stderr == (
        f"error: the local broker of {broker['state_dir']} runs on port {broker['port']}: stop it first "
        f"(`wirestream kafka down --port {broker['port']}`) or pass another --state-dir\n"
    )
    # The broker on the session's port was left alone throughout.
    own = ["--port", broker["port"], "--state-dir", broker["state_dir"]]
    assert wirestream("kafka", "status", *own, env=broker["env"]).stdout.startswith(
        "broker      running (pid"
    )

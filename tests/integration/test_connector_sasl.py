"""Publishing through the local broker's authenticated (SASL_PLAINTEXT) listener, secrets from the environment."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from connectors.publisher import Publisher
from tests.conftest import env_for, wirestream
from tests.integration.test_connector_feeds import read_topic


def sasl_listener(broker) -> tuple[str, str, str]:
    credentials = json.loads((Path(broker["state_dir"]) / "kafka" / "sasl-credentials.json").read_text())
    return f"127.0.0.1:{int(broker['port']) + 2}", credentials["username"], credentials["password"]


def test_publisher_authenticates_with_plain_and_scram(broker, kafka_config):
    address, username, password = sasl_listener(broker)
    for mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        config = dataclasses.replace(
            kafka_config,
            bootstrap_servers=address,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism=mechanism,
            sasl_username=username,
            sasl_password=password,
        )
        with Publisher(config) as publisher:
            story = {"id": f"{len(mechanism):032x}", "source": "sasl", "mechanism": mechanism}
            assert publisher.acknowledged(publisher.publish(story))
    mechanisms = {json.loads(r.value)["mechanism"] for r in read_topic(kafka_config, kafka_config.raw_topic)}
    assert mechanisms == {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}


def test_cli_reads_credentials_from_the_environment_and_never_prints_them(broker, kafka_config, seed_path):
    address, username, password = sasl_listener(broker)
    env = {
        **env_for(kafka_config),
        "WIRESTREAM_BOOTSTRAP_SERVERS": address,
        "WIRESTREAM_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "WIRESTREAM_SASL_MECHANISM": "SCRAM-SHA-256",
        "WIRESTREAM_SASL_USERNAME": username,
        "WIRESTREAM_SASL_PASSWORD": password,
    }
    result = wirestream("connect", "files", str(seed_path), "--source", "turan", "-v", env=env)
    assert "published 1," in result.stdout
    assert password not in result.stdout + result.stderr  # not even at DEBUG
    assert len(read_topic(kafka_config, kafka_config.raw_topic)) == 1

    wrong = "not-the-Password-42"
    refused = wirestream(
        "connect", "files", str(seed_path), env={**env, "WIRESTREAM_SASL_PASSWORD": wrong}, check=False
    )
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "refused credentials" in refused.stderr
    assert wrong not in refused.stdout + refused.stderr and password not in refused.stderr

"""SASL passwords never reach the logs in any form, even at DEBUG, with PLAIN and SCRAM.

The feed connector runs as a user runs it (`wirestream connect feeds --once -v`) against the
session broker's SASL listener; every log line it writes (stderr) is searched for the password as
text, as Python's repr of it and of its UTF-8 bytes, JSON-escaped, URL-encoded, hex and base64.
"""

from __future__ import annotations

import base64
import json
import uuid
from urllib.parse import quote, quote_plus

import pytest

from tests.conftest import env_for, wirestream
from tests.integration.test_connector_feeds import read_topic, rss
from tests.integration.test_connector_sasl import sasl_listener
from wirestream.localhttp import serve_folder

DATE = "Fri, 29 Jul 2022 21:47:00 +0400"


def leaked_forms(password: str) -> dict[str, str]:
    """The forms a password takes in logs, each written out independently of the masking code."""
    data = password.encode("utf-8")
    forms = {
        "text": password,
        "repr": repr(password)[1:-1],
        "repr of repr": repr(repr(password))[2:-2],
        "escaped bytes": repr(data)[2:-1],
        "escaped bytes twice": repr(repr(data))[3:-2],
        "json": json.dumps(password)[1:-1],
        "url": quote(password, safe=""),
        "url plus": quote_plus(password),
        "hex": data.hex(),
    }
    # SASL PLAIN sends authzid NUL user NUL password; its base64, as a client or proxy logs it.
    plain = base64.b64encode(b"user\0user\0" + data).decode()
    forms["base64 plain"] = plain[16:-4]  # the groups that encode only the password's bytes
    forms["base64 alone"] = base64.b64encode(data).decode()[:-4]
    return forms


def found(log: str, password: str) -> list[str]:
    return [name for name, form in leaked_forms(password).items() if len(form) >= 4 and form in log]


def add_scram_user(bootstrap: str, username: str, password: str) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import UserScramCredentialUpsertion

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    try:
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            errors = admin.alter_user_scram_credentials(
                [UserScramCredentialUpsertion(username, mechanism, password)]
            )
            assert not any(errors.values()), errors
    finally:
        admin.close()


@pytest.fixture
def feed_url(tmp_path):
    (tmp_path / "feed.rss").write_text(rss([("masked-1", DATE)]))
    with serve_folder(tmp_path) as base:
        yield f"{base}/feed.rss"


def connect(env: dict[str, str], url: str, *extra: str):
    return wirestream(
        "connect", "feeds", url, "--once", "--allow-private-networks", "-v", *extra, env=env, check=False
    )


def test_scram_passwords_with_non_ascii_quotes_and_backslashes_appear_in_no_log_form(
    broker, kafka_config, feed_url
):
    address, _user, _password = sasl_listener(broker)
    tag = uuid.uuid4().hex[:8]
    username = f"masked-{tag}"
    password = f"sé'cr\"ét\\x41\\-pä\\ss-{tag}"
    add_scram_user(kafka_config.bootstrap_servers, username, password)
    assert found(password, password) == ["text"] and len(leaked_forms(password)["escaped bytes"]) > len(
        password
    )
    for mechanism, log_format in (("SCRAM-SHA-256", "text"), ("SCRAM-SHA-512", "json")):
        env = {
            **env_for(kafka_config),
            "WIRESTREAM_STATE_DIR": f"{kafka_config.state_dir}-{mechanism}",
            "WIRESTREAM_BOOTSTRAP_SERVERS": address,
            "WIRESTREAM_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "WIRESTREAM_SASL_MECHANISM": mechanism,
            "WIRESTREAM_SASL_USERNAME": username,
            "WIRESTREAM_SASL_PASSWORD": password,
        }
        result = connect(env, feed_url, "--log-format", log_format)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "published 1," in result.stdout
        logs = result.stdout + result.stderr
        assert "SaslAuthenticateRequest" in logs  # the exchange was logged at DEBUG
        assert found(logs, password) == [], mechanism
    assert len(read_topic(kafka_config, kafka_config.raw_topic)) == 2  # one per state dir


def test_plain_passwords_appear_in_no_log_form_accepted_or_refused(broker, kafka_config, feed_url):
    address, username, password = sasl_listener(broker)
    base = {
        **env_for(kafka_config),
        "WIRESTREAM_BOOTSTRAP_SERVERS": address,
        "WIRESTREAM_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "WIRESTREAM_SASL_MECHANISM": "PLAIN",
        "WIRESTREAM_SASL_USERNAME": username,
    }
    accepted = connect({**base, "WIRESTREAM_SASL_PASSWORD": password}, feed_url)
    assert accepted.returncode == 0, accepted.stderr[-3000:]
    assert "published 1," in accepted.stdout
    assert found(accepted.stdout + accepted.stderr, password) == []

    # The local broker's PLAIN user cannot have quotes or backslashes in its password; a refused
    # one sends the same authentication bytes, which kafka-python logs at DEBUG before the answer.
    wrong = "wr'ö\"ng\\x5c-pässwörd\\"
    refused = connect({**base, "WIRESTREAM_SASL_PASSWORD": wrong}, feed_url)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "refused credentials" in refused.stderr
    assert "SaslAuthenticateRequest" in refused.stderr  # the authentication bytes were logged, masked
    assert found(refused.stdout + refused.stderr, wrong) == []

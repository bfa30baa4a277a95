"""Feed state (SQLite), the poll schedule, feed specs and connector settings: no broker needed."""

from __future__ import annotations

import json

import pytest

from connectors.feeds import FeedSettings, FeedSpec, next_delay
from connectors.feedstate import FeedStore, Outcome, describe, topics_key
from wirestream.config import Config, load_config
from wirestream.errors import UserError


def test_seen_entries_persist_and_only_acknowledged_ones_are_recorded(tmp_path):
    store = FeedStore(tmp_path)
    store.register("wire", "http://127.0.0.1/feed")
    assert store.unseen("wire", ["a", "b", "c"]) == {"a", "b", "c"}
    store.record(
        "wire",
        Outcome(
            at=100.0,
            status="ok",
            next_due=400.0,
            acknowledged=["a", "b"],
            validators=('"e1"', None),
            published=2,
        ),
    )
    store.close()
    again = FeedStore(tmp_path)
    assert again.unseen("wire", ["a", "b", "c"]) == {"c"}
    record = again.get("wire")
    assert (record.etag, record.published, record.fetches, record.last_success) == ('"e1"', 2, 1, 100.0)
    assert again.unseen("other-feed", ["a"]) == {"a"}  # entries are remembered per feed


def test_validators_stay_when_a_poll_does_not_advance_them(tmp_path):
    store = FeedStore(tmp_path)
    store.register("wire", "u")
    store.record("wire", Outcome(at=1.0, status="ok", next_due=2.0, validators=('"e1"', "Mon")))
    store.record("wire", Outcome(at=2.0, status="ok", next_due=3.0, validators=None))
    assert (store.get("wire").etag, store.get("wire").last_modified) == ('"e1"', "Mon")


def test_failures_count_until_a_success(tmp_path):
    store = FeedStore(tmp_path)
    store.register("wire", "u")
    for at in (1.0, 2.0):
        store.record(
            "wire",
            Outcome(
                at=at,
                status="failed",
                next_due=at + 1,
                errors={"timeout": 1},
                error="timed out",
                error_kind="timeout",
            ),
        )
    record = store.get("wire")
    assert (record.consecutive_failures, record.errors, record.last_error_kind) == (
        2,
        {"timeout": 2},
        "timeout",
    )
    assert describe(record, now=3.0, interval_s=300)["health"] == "failing (2 in a row)"
    store.record("wire", Outcome(at=3.0, status="not_modified", next_due=4.0))
    record = store.get("wire")
    assert (record.consecutive_failures, record.not_modified, record.last_success) == (0, 1, 3.0)
    assert describe(record, now=3.0, interval_s=300)["health"] == "ok"
    assert describe(record, now=3.0 + 1000, interval_s=300)["health"] == "stale"


def test_entries_expire_only_after_they_leave_the_feed(tmp_path):
    store = FeedStore(tmp_path)
    store.register("wire", "u")
    store.record("wire", Outcome(at=100.0, status="ok", next_due=0, acknowledged=["old", "kept"]))
    store.record("wire", Outcome(at=900.0, status="ok", next_due=0, present=["kept"]))  # still listed
    assert store.expire(older_than=500.0) == 1
    assert store.unseen("wire", ["old", "kept"]) == {"old"}


def test_a_poll_is_recorded_in_one_transaction(tmp_path):
    store = FeedStore(tmp_path)
    store.register("wire", "u")
    with pytest.raises(TypeError):
        # A failure half-way (here: a bad counter, after the seen rows were written) leaves nothing behind.
        store.record(
            "wire", Outcome(at=1.0, status="ok", next_due=2.0, acknowledged=["a"], errors={"x": object()})
        )  # type: ignore[dict-item]
    assert store.unseen("wire", ["a"]) == {"a"}
    assert store.get("wire").fetches == 0


def test_legacy_json_state_is_imported_so_an_upgrade_republishes_nothing(tmp_path):
    legacy = tmp_path / "connectors" / "feeds.json"
    legacy.parent.mkdir(parents=True)
    legacy.write_text(json.dumps({"demo/wire": {"etag": '"e"', "seen": {"id-1": "2022-07-29T00:00:00Z"}}}))
    store = FeedStore(tmp_path)
    assert store.unseen("demo/wire", ["id-1", "id-2"]) == {"id-2"}
    assert store.get("demo/wire").etag == '"e"'


def test_backoff_doubles_up_to_the_cap_and_honours_retry_after():
    settings = FeedSettings(interval_s=60, jitter=0, max_backoff_s=600)
    assert [next_delay(60, n, settings) for n in range(6)] == [60, 120, 240, 480, 600, 600]
    assert next_delay(60, 1, settings, retry_after=300) == 300
    assert next_delay(60, 1, settings, retry_after=10_000) == 600
    jittered = {round(next_delay(100, 0, FeedSettings(jitter=0.1)), 6) for _ in range(50)}
    assert len(jittered) > 1 and all(90 <= d <= 110 for d in jittered)


def test_feed_specs_from_config():
    spec = FeedSpec.from_config(
        {
            "url": "https://wire.example/rss",
            "name": "wire",
            "interval_s": 60,
            "fetch_article": True,
            "encodings": "koi8-r",
        }
    )
    assert (spec.name, spec.interval_s, spec.fetch_article, spec.encodings) == (
        "wire",
        60.0,
        True,
        ("koi8-r",),
    )
    assert FeedSpec.from_config("http://127.0.0.1:8123/feeds/turan.rss").name == "127.0.0.1/feeds/turan.rss"
    for bad, message in (
        ({"url": "ftp://x"}, "http"),
        ({"url": "http://x", "interval": 5}, "unknown keys"),
        ({"url": "http://x", "interval_s": -1}, "positive"),
        ({"url": "http://x", "encodings": [1]}, "encodings"),
    ):
        with pytest.raises(UserError, match=message):
            FeedSpec.from_config(bad)


def test_settings_come_from_config_and_are_validated():
    settings = FeedSettings.from_config(
        Config(allow_private_networks=True, max_redirects=2, feed_interval_s=30)
    )
    assert settings.limits.allow_private and settings.limits.max_redirects == 2 and settings.interval_s == 30
    with pytest.raises(ValueError, match="jitter"):
        FeedSettings(jitter=1.5)
    assert FeedSettings.from_config(Config(publish_timeout_s=7)).ack_timeout_s == 7
    with pytest.raises(ValueError, match="publish_timeout_s"):
        FeedSettings.from_config(Config(publish_timeout_s=0))


def test_secrets_are_refused_in_config_files(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("sasl_password: hunter2\n")
    with pytest.raises(UserError, match="WIRESTREAM_SASL_PASSWORD") as caught:
        load_config(path)
    assert "hunter2" not in str(caught.value)


def test_sasl_settings_need_every_part_and_never_show_the_password(monkeypatch):
    config = Config(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256", sasl_username="u")
    with pytest.raises(UserError, match="WIRESTREAM_SASL_PASSWORD"):
        config.kafka_client_options()
    monkeypatch.setenv("WIRESTREAM_SASL_PASSWORD", "s3cret-from-env")
    monkeypatch.setenv("WIRESTREAM_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("WIRESTREAM_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("WIRESTREAM_SASL_USERNAME", "wirestream")
    loaded = load_config()
    options = loaded.kafka_client_options()
    assert (
        options["sasl_plain_password"] == "s3cret-from-env" and options["sasl_mechanism"] == "SCRAM-SHA-512"
    )
    assert "s3cret-from-env" not in repr(loaded) and "s3cret-from-env" not in repr(loaded.redacted())
    with pytest.raises(UserError, match="security_protocol"):
        Config(security_protocol="TLS").kafka_client_options()


def test_entries_are_remembered_per_topic_and_validators_for_the_topics_they_were_earned_with(tmp_path):
    store = FeedStore(tmp_path)
    store.register("wire", "u")
    store.record(
        "wire",
        Outcome(
            at=1.0,
            status="ok",
            next_due=2.0,
            acknowledged=["story", "letter"],
            dead_letter_keys=["letter"],
            topics=("raw", "dlq"),
            validators=('"e1"', None),
        ),
    )
    assert store.acknowledged_on("wire", ["story", "letter", "new"], ("raw", "dlq")) == {
        "story": "raw",
        "letter": "dlq",
    }
    assert store.acknowledged_on("wire", ["story", "letter"], ("raw2", "dlq")) == {"letter": "dlq"}
    assert store.unseen("wire", ["story", "letter"], "raw2") == {"story", "letter"}
    assert store.get("wire").validators_for == topics_key(("raw", "dlq"))
    assert [r.seen for r in store.records()] == [2]


def test_state_of_an_earlier_version_is_upgraded_and_claimed_by_the_first_topics(tmp_path):
    import sqlite3

    path = tmp_path / "connectors" / "feeds.sqlite"
    path.parent.mkdir(parents=True)
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE feeds (name TEXT PRIMARY KEY, url TEXT NOT NULL, etag TEXT, last_modified TEXT,
            last_fetch REAL, last_success REAL, last_error TEXT, last_error_kind TEXT, last_error_at REAL,
            consecutive_failures INTEGER NOT NULL DEFAULT 0, next_due REAL,
            fetches INTEGER NOT NULL DEFAULT 0, not_modified INTEGER NOT NULL DEFAULT 0,
            new_entries INTEGER NOT NULL DEFAULT 0, published INTEGER NOT NULL DEFAULT 0,
            dead_lettered INTEGER NOT NULL DEFAULT 0, errors TEXT NOT NULL DEFAULT '{}');
        CREATE TABLE seen (feed TEXT NOT NULL, key TEXT NOT NULL, first_seen REAL NOT NULL,
            last_seen REAL NOT NULL, PRIMARY KEY (feed, key)) WITHOUT ROWID;
        CREATE INDEX seen_by_age ON seen (last_seen);
        INSERT INTO feeds (name, url, etag) VALUES ('wire', 'u', '"e0"');
        INSERT INTO seen VALUES ('wire', 'a', 1.0, 1.0), ('wire', 'b', 1.0, 1.0);
        """
    )
    old.commit()
    old.close()
    store = FeedStore(tmp_path)
    store.adopt(("raw", "dlq"))
    assert store.unseen("wire", ["a", "b", "c"], "raw") == {"c"}
    assert store.unseen("wire", ["a", "b", "c"], "dlq") == {"c"}
    assert store.unseen("wire", ["a"], "elsewhere") == {"a"}
    record = store.get("wire")
    assert (record.etag, record.validators_for) == ('"e0"', topics_key(("raw", "dlq")))
    store.adopt(("raw2", "dlq2"))  # claimed once: a later connector's topics do not inherit them
    assert store.unseen("wire", ["a"], "raw2") == {"a"}
    assert store.expire(older_than=2.0) == 4

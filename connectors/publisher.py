"""The one way stories reach Kafka: keyed by story id, acks=all, idempotent, compressed, with headers."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from connectors.observability import protect_secrets
from schemas import RAW_SCHEMA_NAME, rfc3339
from schemas.raw import bound_reason
from wirestream.config import Config
from wirestream.errors import UserError

log = logging.getLogger(__name__)

DEAD_LETTER_SCHEMA_NAME = "wirestream.dead_letter.v1"


@dataclass(frozen=True)
class DeadLetter:
    """Input that could not become a raw story, with the reason and the original bytes.

    The reason is cut to ``schemas.raw.MAX_REASON_BYTES`` (saying how much was cut): the payload
    keeps the input whole, and a reason that quoted it would repeat it in every log line and header.
    """

    source: str
    origin: str
    reason: str
    payload: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", bound_reason(self.reason))

    def to_message(self) -> dict[str, Any]:
        return {
            "schema": DEAD_LETTER_SCHEMA_NAME,
            "stage": "connector",
            "source": self.source,
            "origin": self.origin,
            "reason": self.reason,
            "payload_b64": base64.b64encode(self.payload).decode("ascii"),
            "at": rfc3339(datetime.now(UTC)),
        }


def unreachable(config: Config, exc: Exception) -> UserError:
    """The error for a broker that does not answer; names no secret (only the exception's class)."""
    hint = ""
    if config.security_protocol.upper().startswith("SASL"):
        hint = (
            f" With SASL ({config.sasl_mechanism}, user {config.sasl_username!r}) this is also what refused "
            "credentials look like: check WIRESTREAM_SASL_USERNAME / WIRESTREAM_SASL_PASSWORD."
        )
    return UserError(
        f"cannot reach Kafka at {config.bootstrap_servers} ({exc.__class__.__name__}). "
        "Start the local broker with `wirestream kafka up`, or pass --bootstrap-servers / "
        "set WIRESTREAM_BOOTSTRAP_SERVERS." + hint
    )


def ensure_topics(config: Config, topics: list[str]) -> None:
    """Create missing topics; a no-op where they exist (or where the cluster creates them itself)."""
    protect_secrets(config.sasl_password, config.ssl_password)
    try:
        admin = KafkaAdminClient(**config.kafka_client_options(), request_timeout_ms=15000)
    except (KafkaError, OSError) as exc:
        raise unreachable(config, exc) from None
    try:
        existing = set(admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            # Replicated where the cluster can: three copies, two of them in sync for a write to be
            # acknowledged (acks=all), so any one broker may die without losing an acknowledged story.
            replication = min(3, len(admin.describe_cluster().get("brokers", [])) or 1)
            settings = {"min.insync.replicas": "2"} if replication >= 3 else {}
            new = [
                NewTopic(
                    t,
                    num_partitions=config.topic_partitions,
                    replication_factor=replication,
                    topic_configs=settings,
                )
                for t in missing
            ]
            try:
                admin.create_topics(new)
                log.info("created topics %s", missing)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


class Publisher:
    """Sends raw stories and dead letters; callers record state only after `acknowledged`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        ensure_topics(config, [config.raw_topic, config.dlq_topic])
        try:
            self._producer = KafkaProducer(
                **config.kafka_client_options(),
                acks="all",
                enable_idempotence=True,
                compression_type="gzip",
                linger_ms=20,
                batch_size=256 * 1024,
                max_request_size=4 * 1024 * 1024,
                # A broker that comes back is found within 2 s (the client's default backs off to 30 s).
                reconnect_backoff_max_ms=2000,
            )
        except (KafkaError, OSError) as exc:
            raise unreachable(config, exc) from None

    def publish(self, message: dict[str, Any]) -> Any:
        value = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = [
            ("content-type", b"application/json"),
            ("schema", RAW_SCHEMA_NAME.encode()),
            ("source", str(message.get("source", "")).encode("utf-8")),
        ]
        return self._producer.send(
            self.config.raw_topic, key=message["id"].encode(), value=value, headers=headers
        )

    def dead_letter(self, letter: DeadLetter) -> Any:
        log.warning("dead letter from %s (%s): %s", letter.source, letter.origin, letter.reason)
        value = json.dumps(letter.to_message(), ensure_ascii=False).encode("utf-8")
        headers = [
            ("content-type", b"application/json"),
            ("schema", DEAD_LETTER_SCHEMA_NAME.encode()),
            ("source", letter.source.encode("utf-8")),
            ("reason", bound_reason(letter.reason, 500).encode("utf-8")),
        ]
        return self._producer.send(self.config.dlq_topic, key=None, value=value, headers=headers)

    def acknowledged(self, future: Any, timeout_s: float = 60.0) -> bool:
        """Wait for Kafka's acknowledgement; False (logged) when the send failed."""
        error = self.wait(future, timeout_s)
        if error is not None:
            log.error("publish failed: %s", error)
        return error is None

    def wait(self, future: Any, timeout_s: float) -> KafkaError | None:
        """Wait for Kafka's acknowledgement: None, or why it did not come (nothing logged)."""
        try:
            future.get(timeout=max(0.0, timeout_s))
            return None
        except KafkaError as exc:
            return exc

    def reachable(self, timeout_s: float = 5.0) -> bool:
        """Whether the cluster answers now (a metadata request on a connection of its own) and this
        producer has delivered what it still held, so that the next sends go through."""
        wait_ms = max(1, int(timeout_s * 1000))
        options = {**self.config.kafka_client_options(), "bootstrap_timeout_ms": wait_ms}
        try:
            admin = KafkaAdminClient(**options, request_timeout_ms=wait_ms)
        except (KafkaError, OSError):
            return False
        try:
            admin.list_topics()
        except (KafkaError, OSError):
            return False
        finally:
            admin.close()
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError:
            return False
        return True

    def close(self, timeout_s: float = 30.0) -> None:
        """Send what is buffered, waiting ``timeout_s`` at most (a broker that is gone cannot hold a
        stop): what was not acknowledged was never recorded, so the next run sends it again."""
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            log.warning("closing before Kafka acknowledged everything (%s); the next run sends it again", exc)
        self._producer.close(timeout=5)

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

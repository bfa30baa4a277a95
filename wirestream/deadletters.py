"""Dead letters, read back with their reasons, and fixed stories sent again.

Two places hold them. Input a connector could not turn into a raw story goes to the Kafka
dead-letter topic (``dlq_topic``) as a JSON message (`connectors.publisher.DeadLetter`); records of
the raw topic that fail in the pipeline are committed to the ``dead_letters`` table beside the
stories. `list_dead_letters` reads both into one shape; `republish` validates corrected raw
stories against the raw-story contract and sends them to the raw topic through the connectors'
own producer (`connectors.publisher.Publisher`: keyed by story id, acks=all, idempotent), so the
next `wirestream run` takes them like any other story.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.dataset import Dataset
from wirestream.config import Config
from wirestream.errors import UserError

__all__ = [
    "SOURCES",
    "Letter",
    "connector_letters",
    "letter_from_message",
    "list_dead_letters",
    "pipeline_letters",
    "read_fixed",
    "republish",
]

log = logging.getLogger(__name__)

SOURCES = ("connectors", "pipeline")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Letter:
    """One dead letter: where it is kept, when it got there, why, and the bytes that failed."""

    source: str  # "connectors" (the dead-letter topic) or "pipeline" (the dead_letters table)
    at: datetime | None  # published to the topic, or committed to the table
    stage: str
    reason: str
    story_source: str | None  # the feed or drop it came from, where known
    origin: str | None  # the connector's file, line or URL
    story_id: str | None
    kafka: dict[str, Any]  # topic, partition and offset of the dead letter (connectors) or the failed record
    payload: bytes

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the payload as text when it is UTF-8, else base64; ``story`` holds it
        parsed when it is a JSON object (a connector's completed as the connector completes a
        hand-written raw message), a draft to fix and `republish`."""
        entry: dict[str, Any] = {
            "source": self.source,
            "at": self.at.isoformat().replace("+00:00", "Z") if self.at else None,
            "stage": self.stage,
            "reason": self.reason,
            "story_source": self.story_source,
            "origin": self.origin,
            "story_id": self.story_id,
            "kafka": self.kafka,
        }
        try:
            text = self.payload.decode("utf-8")
        except UnicodeDecodeError:
            entry["payload_b64"] = base64.b64encode(self.payload).decode("ascii")
            return entry
        entry["payload"] = text
        try:
            story = json.loads(text)
        except ValueError:
            return entry
        if isinstance(story, dict) and self.source == "connectors":
            # As the connector judged it: a hand-written raw message gets the fields it may leave out.
            from connectors.formats.agency import complete_message

            fetched = str(entry["at"] or story.get("fetched_at") or "")
            story = complete_message(story, self.story_source or "", fetched)
        if isinstance(story, dict):
            entry["story"] = story
        return entry

    def line(self) -> str:
        when = self.at.strftime("%Y-%m-%dT%H:%M:%SZ") if self.at else "(time unknown)"
        where = self.origin or (
            f"{self.kafka.get('topic')}/{self.kafka.get('partition')}@{self.kafka.get('offset')}"
        )
        who = f"{self.story_source} " if self.story_source else ""
        reason = " ".join(self.reason.split())  # one line a letter
        return f"{when}  {self.source:<10}  {self.stage:<9}  {who}{where}: {reason}"


def list_dead_letters(
    config: Config, dataset: Dataset | None, sources: tuple[str, ...] = SOURCES, since: datetime | None = None
) -> list[Letter]:
    """The dead letters of ``sources`` since ``since`` (all when None), oldest first: connector
    ones by the time Kafka appended them, pipeline ones by the time their batch committed."""
    letters: list[Letter] = []
    if "pipeline" in sources:  # first: a dataset that is not there is one error, before Kafka is asked
        if dataset is None:
            raise UserError(
                "pipeline dead letters live in the dataset: pass --output DIR or set WIRESTREAM_OUTPUT"
            )
        letters.extend(pipeline_letters(dataset, since))
    if "connectors" in sources:
        letters.extend(connector_letters(config, since))
    return sorted(letters, key=lambda letter: (letter.at or _EPOCH, letter.source))


def connector_letters(config: Config, since: datetime | None = None) -> list[Letter]:
    """What the dead-letter topic holds, appended at or after ``since``; none when the topic does
    not exist (nothing was ever dead-lettered)."""
    from kafka import TopicPartition
    from kafka.errors import KafkaError

    from connectors.publisher import unreachable
    from pipeline.kafka_source import CONSUMERS, IDLE_POLLS, POLL_MS, blocks_until, ranges_for_times

    options = config.kafka_client_options()
    letters: list[Letter] = []
    try:
        for rng in ranges_for_times(options, config.dlq_topic, since or _EPOCH, None):
            tp = TopicPartition(rng.topic, rng.partition)
            with CONSUMERS.reading(options, tp, rng.start) as consumer:
                for block in blocks_until(consumer, tp, rng.stop, POLL_MS, IDLE_POLLS):
                    letters.extend(letter_from_message(r) for r in block if rng.start <= r.offset < rng.stop)
    except (KafkaError, OSError) as exc:
        raise unreachable(config, exc) from None
    return letters


def letter_from_message(record: Any) -> Letter:
    """A message of the dead-letter topic; one that is not a connector's dead letter (another
    producer wrote to the topic) is listed as it is, with that as its reason."""
    at = datetime.fromtimestamp(record.timestamp / 1000, UTC) if record.timestamp >= 0 else None
    kafka = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
    try:
        message = json.loads(record.value)
        payload = base64.b64decode(message["payload_b64"], validate=True)
        reason = str(message["reason"])
    except (ValueError, TypeError, KeyError):
        return Letter(
            "connectors", at, "unknown", "not a wirestream dead letter (unreadable message)",
            None, None, None, kafka, bytes(record.value or b""),
        )  # fmt: skip
    return Letter(
        source="connectors",
        at=at,
        stage=str(message.get("stage") or "connector"),
        reason=reason,
        story_source=message.get("source") or None,
        origin=message.get("origin") or None,
        story_id=None,
        kafka=kafka,
        payload=payload,
    )


def pipeline_letters(dataset: Dataset, since: datetime | None = None) -> list[Letter]:
    """The dead_letters table's current rows whose batch committed at or after ``since`` (a row
    whose commit time is no longer recorded, its snapshot expired, counts as older than any)."""
    from wirestream.tables import COMMITTED_AT, read_committed

    if dataset.embedded and not dataset.root.is_dir():
        raise UserError(f"{dataset.root} is not a wirestream dataset folder (it does not exist)")
    if not dataset.exists():
        raise UserError(f"{dataset.root} holds no wirestream table: nothing committed yet")
    columns = ["kafka_topic", "kafka_partition", "kafka_offset", "story_id", "stage", "reason", "payload"]
    letters: list[Letter] = []
    for row in read_committed(dataset, "dead_letters", columns, since).to_pylist():
        at = row[COMMITTED_AT]
        letters.append(
            Letter(
                source="pipeline",
                at=at,
                stage=row["stage"],
                reason=row["reason"],
                story_source=None,
                origin=None,
                story_id=row["story_id"],
                kafka={
                    "topic": row["kafka_topic"],
                    "partition": row["kafka_partition"],
                    "offset": row["kafka_offset"],
                },
                payload=row["payload"] or b"",
            )
        )
    return letters


def read_fixed(path: str | Path) -> list[dict[str, Any]]:
    """The raw stories in a JSON-lines file, every one valid under the raw-story contract; else
    one error naming each line at fault (at most five) and what is wrong with it."""
    from schemas import validate_raw

    file = Path(path)
    if not file.is_file():
        raise UserError(
            f"--from {file}: no such file" if not file.exists() else f"--from {file} is not a file"
        )
    try:
        lines = file.read_text("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise UserError(f"--from {file} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    stories, faults = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            story = json.loads(line)
        except ValueError as exc:
            faults.append(f"line {number}: not JSON ({exc})")
            continue
        problems = validate_raw(story)
        if problems:
            faults.append(f"line {number}: {'; '.join(problems)}")
        else:
            stories.append(story)
    if faults:
        more = f" (and {len(faults) - 5} more)" if len(faults) > 5 else ""
        raise UserError(f"--from {file}: nothing sent; " + " | ".join(faults[:5]) + more)
    if not stories:
        raise UserError(f"--from {file} holds no stories (one raw story a line)")
    return stories


def republish(config: Config, stories: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], bool]]:
    """Send ``stories`` (checked by `read_fixed`) to the raw topic as a connector does; yields each
    with whether Kafka acknowledged it."""
    from connectors.publisher import Publisher

    with Publisher(config) as publisher:
        futures = [(story, publisher.publish(story)) for story in stories]
        for story, future in futures:
            yield story, publisher.acknowledged(future)

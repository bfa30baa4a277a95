"""Publish a connector's items and advance its state only for what Kafka acknowledged."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kafka.errors import KafkaError

from connectors.publisher import DeadLetter, Publisher

log = logging.getLogger(__name__)


@dataclass
class Item:
    """One unit of connector output: a raw story or a dead letter, with its state key."""

    key: str
    story: dict[str, Any] | None = None
    dead_letter: DeadLetter | None = None


@dataclass
class DeliveryReport:
    published: int = 0
    dead_lettered: int = 0
    skipped: int = 0
    """Stories published before (already on the topic), so not sent again."""
    skipped_dead_letters: int = 0
    """Dead letters sent before (a refused document or entry fetched again), so not sent again."""
    failed: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, other: DeliveryReport) -> None:
        self.published += other.published
        self.dead_lettered += other.dead_lettered
        self.skipped += other.skipped
        self.skipped_dead_letters += other.skipped_dead_letters
        self.failed += other.failed
        self.failures.extend(other.failures)


@dataclass
class Sent:
    """What Kafka acknowledged of a batch of items, by state key."""

    acknowledged: list[str] = field(default_factory=list)
    dead_letter_keys: list[str] = field(default_factory=list)
    """The acknowledged keys that were dead letters."""
    unacknowledged: list[str] = field(default_factory=list)
    published: int = 0
    dead_lettered: int = 0
    error: str | None = None
    """Why the first unacknowledged item was not acknowledged."""


def send(publisher: Publisher, items: Iterable[Item], timeout_s: float = 60.0) -> Sent:
    """Send every item, then wait for the acknowledgements, ``timeout_s`` for all of them together
    (a broker that is gone costs one timeout, not one per item); nothing is marked or logged."""
    pending: list[tuple[Item, Any]] = []
    for item in items:
        try:
            if item.story is not None:
                pending.append((item, publisher.publish(item.story)))
            elif item.dead_letter is not None:
                pending.append((item, publisher.dead_letter(item.dead_letter)))
        except KafkaError as exc:  # the producer gave up before sending (no metadata, buffer full)
            pending.append((item, exc))
    sent = Sent()
    deadline = time.monotonic() + timeout_s
    for item, future in pending:
        if isinstance(future, KafkaError):
            error: KafkaError | None = future
        else:
            error = publisher.wait(future, deadline - time.monotonic())
        if error is None:
            sent.acknowledged.append(item.key)
            if item.story is not None:
                sent.published += 1
            else:
                sent.dead_lettered += 1
                sent.dead_letter_keys.append(item.key)
        else:
            sent.unacknowledged.append(item.key)
            if sent.error is None:
                text, name = str(error), error.__class__.__name__
                sent.error = text if text.startswith(name) else f"{name}: {text}"
    return sent


def deliver(
    publisher: Publisher,
    seen: dict[str, Any],
    items: Iterable[Item],
    now: str,
    seen_dead: dict[str, Any] | None = None,
) -> DeliveryReport:
    """Send every item not yet acknowledged, wait for acknowledgements, then mark the acknowledged.

    ``seen`` holds the keys whose story Kafka acknowledged (key -> first-seen time) and
    ``seen_dead`` those whose dead letter it acknowledged (``seen`` itself when None): sections of
    connector state for the current raw and dead-letter topics, which the caller saves.
    """
    dead_seen = seen if seen_dead is None else seen_dead
    report = DeliveryReport()
    fresh: list[Item] = []
    for item in items:
        if item.key in seen:
            report.skipped += 1
        elif item.key in dead_seen:
            report.skipped_dead_letters += 1
        else:
            fresh.append(item)
    sent = send(publisher, fresh, publisher.config.publish_timeout_s)
    letters = set(sent.dead_letter_keys)
    for key in sent.acknowledged:
        (dead_seen if key in letters else seen)[key] = now
    report.published, report.dead_lettered = sent.published, sent.dead_lettered
    report.failed, report.failures = len(sent.unacknowledged), list(sent.unacknowledged)
    if sent.unacknowledged:
        log.error(
            "%d of %d items not acknowledged by Kafka (%s); the next run sends them again",
            len(sent.unacknowledged),
            len(fresh),
            sent.error,
        )
    return report

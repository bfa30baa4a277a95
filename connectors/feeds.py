"""Feeds over HTTP (RSS, Atom, JSON Feed, ninjs, NewsML-G2), polled once or continuously.

Each feed has its own interval (with jitter), conditional GET (an unchanged feed costs a 304),
exponential backoff with a cap while it fails, and optionally the full article fetched behind each
new entry. Entries are remembered by story id in the feed state (``connectors.feedstate``), so a
restart, a reordered feed or a re-dated entry republishes nothing. State advances only after Kafka
acknowledged: validators move only once every new entry of the document is acknowledged, so an
entry that failed is fetched again instead of hiding behind a 304. Entries and validators are
remembered per topic, so a changed raw or dead-letter topic receives everything again.

A feed goes to a worker only when its host has a free slot (a slow host holds its own slots, not
the workers), and while Kafka does not acknowledge, polling pauses until it answers again.
"""

from __future__ import annotations

import heapq
import json
import logging
import multiprocessing
import os
import random
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from connectors.delivery import DeliveryReport, Item, send
from connectors.encoding import EncodingError, decode
from connectors.feedstate import FeedStore, Outcome, topics_key
from connectors.fetch import ARTICLE_ACCEPT, Fetcher, FetchError, Limits, check_address
from connectors.formats import ParsedDocument, parse_document
from connectors.formats.common import problems
from connectors.formats.syndication import story_from_entry
from connectors.observability import FeedMetrics
from connectors.publisher import DeadLetter, Publisher
from schemas import rfc3339
from wirestream.errors import UserError
from wirestream.processes import forkserver

__all__ = [
    "FeedConnector",
    "FeedSettings",
    "FeedSpec",
    "check_address",
    "default_source",
    "items_from_feed",
    "next_delay",
    "poll_feeds",
    "story_from_entry",
]

log = logging.getLogger(__name__)

_SPEC_KEYS = ("url", "name", "interval_s", "fetch_article", "encodings")


def default_source(url: str) -> str:
    """Host (without port) and path: stable when a local test server changes port."""
    parts = urlsplit(url)
    return f"{parts.hostname or ''}{parts.path}".rstrip("/") or url


@dataclass(frozen=True)
class FeedSpec:
    """One feed: where it is, the stable name its state and stories carry, and its own settings."""

    url: str
    name: str
    interval_s: float | None = None
    """Seconds between polls; None takes the connector's ``feed_interval_s``."""
    fetch_article: bool = False
    """Fetch the page behind each new entry and publish its HTML (for summary-only feeds)."""
    encodings: tuple[str, ...] | None = None
    """Encodings to try when the feed declares none and is not UTF-8 (default: the usual legacy ones)."""

    def __post_init__(self) -> None:
        if self.interval_s is not None and self.interval_s <= 0:
            raise ValueError(f"feed {self.name}: interval_s must be positive")

    @staticmethod
    def from_config(entry: dict[str, Any] | str) -> FeedSpec:
        if isinstance(entry, str):
            entry = {"url": entry}
        if not isinstance(entry, dict):
            raise UserError(f"feed entry {entry!r} must be a URL or a mapping with 'url'")
        unknown = sorted(set(entry) - set(_SPEC_KEYS))
        if unknown:
            raise UserError(f"feed entry {entry!r}: unknown keys {unknown}; known keys: {list(_SPEC_KEYS)}")
        url = entry.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise UserError(f"feed entry {entry!r} needs an http(s) 'url'")
        interval = entry.get("interval_s")
        if interval is not None and (
            isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0
        ):
            raise UserError(f"feed entry {entry!r}: interval_s must be a positive number of seconds")
        encodings = entry.get("encodings")
        if isinstance(encodings, str):
            encodings = [encodings]
        if encodings is not None and not (
            isinstance(encodings, list) and all(isinstance(e, str) for e in encodings)
        ):
            raise UserError(f"feed entry {entry!r}: encodings must be a list of encoding names")
        return FeedSpec(
            url=url,
            name=str(entry.get("name") or default_source(url)),
            interval_s=float(interval) if interval is not None else None,
            fetch_article=bool(entry.get("fetch_article", False)),
            encodings=tuple(encodings) if encodings else None,
        )


@dataclass(frozen=True)
class FeedSettings:
    """How the connector polls; one object so the CLI, the demo and tests build it the same way."""

    limits: Limits = field(default_factory=Limits)
    interval_s: float = 300.0
    jitter: float = 0.1
    """Each delay is multiplied by a random factor in [1 - jitter, 1 + jitter]."""
    max_backoff_s: float = 3600.0
    seen_ttl_s: float = 90 * 86400.0
    """How long an entry is remembered after it last appeared in its feed."""
    workers: int = 8
    """Feeds polled at the same time (the per-host limit applies within this)."""
    parse_workers: int = 0
    """Processes that parse documents; 0 parses in the connector's own process."""
    parse_timeout_s: float = 120.0
    ack_timeout_s: float = 30.0
    """How long a poll waits for Kafka to acknowledge its entries (all of them together)."""
    kafka_probe_max_s: float = 30.0
    """While Kafka does not acknowledge, the longest wait between two checks whether it answers."""
    kafka_notice_s: float = 60.0
    """While Kafka does not acknowledge, how often a line says the connector is waiting for it."""

    def __post_init__(self) -> None:
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")
        if self.interval_s <= 0 or self.max_backoff_s <= 0 or self.seen_ttl_s <= 0:
            raise ValueError("interval_s, max_backoff_s and seen_ttl_s must be positive")
        if self.workers < 1 or self.parse_workers < 0:
            raise ValueError("workers must be >= 1 and parse_workers >= 0")
        if self.ack_timeout_s <= 0 or self.kafka_probe_max_s <= 0 or self.kafka_notice_s <= 0:
            raise ValueError("publish_timeout_s, kafka_probe_max_s and kafka_notice_s must be positive")

    @staticmethod
    def from_config(config: Any) -> FeedSettings:
        return FeedSettings(
            limits=Limits(
                connect_timeout_s=config.http_connect_timeout_s,
                read_timeout_s=config.http_timeout_s,
                deadline_s=config.http_deadline_s,
                max_bytes=config.max_body_bytes,
                max_redirects=config.max_redirects,
                per_host=config.per_host_concurrency,
                allow_private=config.allow_private_networks,
            ),
            interval_s=config.feed_interval_s,
            jitter=config.feed_jitter,
            max_backoff_s=config.max_backoff_s,
            seen_ttl_s=config.seen_ttl_days * 86400.0,
            workers=config.feed_workers,
            parse_workers=config.parse_workers,
            ack_timeout_s=config.publish_timeout_s,
        )


@dataclass
class PollReport:
    feed: str
    status: str  # ok | not_modified | failed | interrupted
    next_due: float
    report: DeliveryReport = field(default_factory=DeliveryReport)
    error: str | None = None
    error_kind: str | None = None
    kafka_error: str | None = None
    """Why Kafka did not acknowledge some of the poll's entries (None when it acknowledged all)."""

    @property
    def failed(self) -> bool:
        """The poll failed, or some of its entries were not acknowledged and wait for the next."""
        return self.status == "failed" or self.report.failed > 0


def next_delay(
    interval_s: float, failures: int, settings: FeedSettings, retry_after: float | None = None
) -> float:
    """Seconds until the next poll: the interval, doubled per failure up to the cap, then jittered.

    A server's Retry-After is honoured (up to the cap) when it asks for longer.
    """
    delay = interval_s if failures == 0 else min(settings.max_backoff_s, interval_s * 2 ** min(failures, 30))
    if retry_after is not None:
        delay = min(settings.max_backoff_s, max(delay, retry_after))
    jitter = settings.jitter
    return delay * random.uniform(1 - jitter, 1 + jitter) if jitter else delay


def _parse_job(kwargs: dict[str, Any]) -> ParsedDocument:
    return parse_document(**kwargs)


class ParseTimeout(Exception):
    pass


class _Parser:
    """Parses in worker processes when asked to: feedparser is CPU-bound and holds the GIL.

    A document that makes a parser hang costs one worker pool (terminated and replaced), never the
    scheduler.
    """

    def __init__(self, workers: int, timeout_s: float) -> None:
        self.workers = workers
        self.timeout_s = timeout_s
        self._pool: Any = None
        self._lock = threading.Lock()

    def parse(self, **kwargs: Any) -> ParsedDocument:
        if self.workers == 0:
            return parse_document(**kwargs)
        with self._lock:
            if self._pool is None:
                self._pool = forkserver([]).Pool(self.workers, maxtasksperchild=500)
            pool = self._pool
        pending = pool.apply_async(_parse_job, (kwargs,))
        try:
            return pending.get(self.timeout_s)  # type: ignore[no-any-return]
        except multiprocessing.TimeoutError:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
                    pool.terminate()
            raise ParseTimeout(f"parsing took longer than {self.timeout_s:.0f}s") from None

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool.join()
                self._pool = None


class FeedConnector:
    """Polls feeds and publishes their new entries; ``run_once`` for one pass, ``run`` until stopped."""

    def __init__(
        self,
        publisher: Publisher,
        state_dir: str | os.PathLike[str],
        feeds: list[FeedSpec],
        settings: FeedSettings | None = None,
        metrics: FeedMetrics | None = None,
    ) -> None:
        names = Counter(spec.name for spec in feeds)
        twice = sorted(name for name, count in names.items() if count > 1)
        if twice:
            raise UserError(f"feed names must be unique; used more than once: {twice}")
        self.publisher = publisher
        self.feeds = list(feeds)
        self.settings = settings or FeedSettings()
        self.metrics = metrics or FeedMetrics()
        self.store = FeedStore(state_dir)
        self.topics: tuple[str, str] = (publisher.config.raw_topic, publisher.config.dlq_topic)
        """The raw and dead-letter topics; entries and validators are remembered per topic."""
        self.store.adopt(self.topics)
        for spec in self.feeds:
            self.store.register(spec.name, spec.url)
        self.fetcher = Fetcher(self.settings.limits)
        self._parser = _Parser(self.settings.parse_workers, self.settings.parse_timeout_s)
        self.stopping = threading.Event()

    def close(self) -> None:
        self._parser.close()
        self.store.close()

    def __enter__(self) -> FeedConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _delay(self, spec: FeedSpec, failures: int, retry_after: float | None = None) -> float:
        return next_delay(spec.interval_s or self.settings.interval_s, failures, self.settings, retry_after)

    def poll(self, spec: FeedSpec) -> PollReport:
        """Fetch, parse and publish one feed; every outcome is recorded, nothing raises."""
        try:
            return self._poll(spec)
        except Exception as exc:  # a bug must cost one feed one poll, not the scheduler
            log.exception("feed %s: unexpected failure", spec.name, extra={"feed": spec.name})
            now = time.time()
            return self._failed(spec, now, "internal", f"{exc.__class__.__name__}: {exc}")

    def _failed(
        self, spec: FeedSpec, now: float, kind: str, message: str, retry_after: float | None = None
    ) -> PollReport:
        failures = self.store.get(spec.name).consecutive_failures + 1
        next_due = now + self._delay(spec, failures, retry_after)
        log.error(
            "feed %s failed (%s): %s; retry in %.0fs",
            spec.name,
            kind,
            message,
            next_due - now,
            extra={"feed": spec.name, "url": spec.url, "kind": kind},
        )
        self.store.record(
            spec.name,
            Outcome(
                at=now, status="failed", next_due=next_due, errors={kind: 1}, error=message, error_kind=kind
            ),
        )
        self.metrics.errors.labels(spec.name, kind).inc()
        self.metrics.consecutive_failures.labels(spec.name).set(failures)
        report = DeliveryReport(failed=1, failures=[spec.url])
        return PollReport(spec.name, "failed", next_due, report, message, kind)

    def _poll(self, spec: FeedSpec) -> PollReport:
        record = self.store.get(spec.name)
        now = time.time()
        self.metrics.fetches.labels(spec.name).inc()
        # Validators earned while publishing to other topics would hide entries behind a 304.
        current = record.validators_for == topics_key(self.topics)
        try:
            response = self.fetcher.get(
                spec.url,
                etag=record.etag if current else None,
                last_modified=record.last_modified if current else None,
            )
        except FetchError as exc:
            return self._failed(spec, now, exc.kind, str(exc), exc.retry_after)
        if response.status == 304:
            next_due = now + self._delay(spec, 0)
            self.store.record(spec.name, Outcome(at=now, status="not_modified", next_due=next_due))
            self.metrics.not_modified.labels(spec.name).inc()
            self.metrics.last_success.labels(spec.name).set(now)
            self.metrics.consecutive_failures.labels(spec.name).set(0)
            return PollReport(spec.name, "not_modified", next_due)
        fetched_at = rfc3339(datetime.fromtimestamp(now, UTC))
        try:
            parsed = self._parser.parse(
                data=response.body,
                source=spec.name,
                origin=spec.url,
                fetched_at=fetched_at,
                content_type=response.content_type,
                fallback_encodings=spec.encodings,
            )
        except ParseTimeout as exc:
            return self._failed(spec, now, "parse_timeout", str(exc))
        errors: Counter[str] = Counter()
        for warning in parsed.warnings:
            log.warning("feed %s: %s", spec.name, warning, extra={"feed": spec.name, "kind": "malformed"})
            errors["malformed"] += 1
        keys = [item.key for item in parsed.items]
        # An entry is done once a story for it is on the raw topic or its dead letter on the
        # dead-letter topic; after either topic changes, what is not on the new one is sent again.
        done = self.store.acknowledged_on(spec.name, keys, self.topics)
        fresh: list[Item] = []
        queued: set[str] = set()
        for item in parsed.items:
            if item.key not in done and item.key not in queued:
                fresh.append(item)
                queued.add(item.key)  # the same entry twice in one document publishes once
        repeats = len(keys) - len(set(keys))
        if repeats:
            # Only the first entry with an id is published; the per-feed summary counts the others.
            errors["duplicate_id"] += repeats
            log.warning(
                "feed %s: %d entries repeat the id of an earlier entry; only the first is published",
                spec.name,
                repeats,
                extra={"feed": spec.name, "kind": "duplicate_id"},
            )
        already_dead_lettered = sum(1 for topic in done.values() if topic == self.topics[1])
        complete = True
        deferred: list[Item] = []
        if spec.fetch_article:
            fresh, deferred, article_errors = self._with_articles(spec, fresh)
            errors.update(article_errors)
            complete = not deferred
        if self.stopping.is_set():
            return PollReport(spec.name, "interrupted", now)  # nothing sent: all left for the next run
        sent = send(self.publisher, fresh, self.settings.ack_timeout_s)
        complete = complete and not sent.unacknowledged
        if sent.unacknowledged:
            errors["kafka"] += 1
            log.error(
                "feed %s: %d of %d entries not acknowledged by Kafka (%s); they are fetched and sent again",
                spec.name,
                len(sent.unacknowledged),
                len(fresh),
                sent.error,
                extra={"feed": spec.name, "kind": "kafka"},
            )
        if parsed.error is not None:
            errors["invalid_document"] += 1
            log.error(
                "feed %s: %s",
                spec.name,
                parsed.error,
                extra={"feed": spec.name, "url": spec.url, "kind": "invalid_document"},
            )
        failures = record.consecutive_failures + 1 if parsed.error else 0
        next_due = now + self._delay(spec, failures)
        acknowledged = set(sent.acknowledged)
        outcome = Outcome(
            at=now,
            status="failed" if parsed.error else "ok",
            next_due=next_due,
            acknowledged=sent.acknowledged,
            dead_letter_keys=sent.dead_letter_keys,
            topics=self.topics,
            present=[key for key in keys if key not in acknowledged],
            # A refused document keeps its validators stale: the next poll fetches it again and the
            # feed stays unhealthy until it changes (its dead letter is not sent twice).
            validators=(response.etag, response.last_modified) if complete and not parsed.error else None,
            published=sent.published,
            dead_lettered=sent.dead_lettered,
            new_entries=len(fresh),
            errors=dict(errors),
            error=parsed.error,
            error_kind="invalid_document" if parsed.error else None,
        )
        self.store.record(spec.name, outcome)
        metrics = self.metrics
        metrics.new_entries.labels(spec.name).inc(len(fresh))
        metrics.published.labels(spec.name).inc(sent.published)
        metrics.dead_lettered.labels(spec.name).inc(sent.dead_lettered)
        for kind, count in errors.items():
            metrics.errors.labels(spec.name, kind).inc(count)
        metrics.consecutive_failures.labels(spec.name).set(failures)
        if not parsed.error:
            metrics.last_success.labels(spec.name).set(now)
        report = DeliveryReport(
            published=sent.published,
            dead_lettered=sent.dead_lettered,
            skipped=len(done) - already_dead_lettered,
            skipped_dead_letters=already_dead_lettered,
            failed=len(sent.unacknowledged) + len(deferred),
            failures=[*sent.unacknowledged, *(item.key for item in deferred)],
        )
        return PollReport(
            spec.name, outcome.status, next_due, report, parsed.error, outcome.error_kind, sent.error
        )

    def _with_articles(
        self, spec: FeedSpec, items: list[Item]
    ) -> tuple[list[Item], list[Item], Counter[str]]:
        """Each new story with the HTML of the page it links to; (ready, deferred, errors).

        A permanent failure (404, a refused address, a page too large) turns the entry into a dead
        letter; a transient one defers it, unrecorded, to the next poll.
        """
        ready: list[Item] = []
        deferred: list[Item] = []
        errors: Counter[str] = Counter()
        for item in items:
            story = item.story
            if story is None or not story.get("url"):
                ready.append(item)
                continue
            if self.stopping.is_set():
                deferred.append(item)
                continue
            payload = json.dumps(story, ensure_ascii=False).encode("utf-8")
            try:
                page = self.fetcher.get(story["url"], accept=ARTICLE_ACCEPT)
                decoded = decode(page.body, content_type=page.content_type)
            except FetchError as exc:
                errors[f"article_{exc.kind}"] += 1
                if not exc.permanent:
                    log.error(
                        "feed %s: article %s deferred (%s): %s",
                        spec.name,
                        story["url"],
                        exc.kind,
                        exc,
                        extra={"feed": spec.name, "kind": f"article_{exc.kind}"},
                    )
                    deferred.append(item)
                    continue
                reason = f"article fetch failed ({exc.kind}): {exc}"
                ready.append(Item(item.key, dead_letter=DeadLetter(spec.name, story["url"], reason, payload)))
                continue
            except EncodingError as exc:
                errors["article_encoding"] += 1
                reason = f"article undecodable: {exc}"
                ready.append(Item(item.key, dead_letter=DeadLetter(spec.name, story["url"], reason, payload)))
                continue
            article = dict(story)
            article["summary"] = story.get("summary") or story.get("body") or None
            article["body"] = decoded.text
            article["body_format"] = "text/html"
            article["encoding"] = decoded.record()
            found = problems(article)
            if found:
                reason = "article: " + "; ".join(found)
                ready.append(
                    Item(item.key, dead_letter=DeadLetter(spec.name, story["url"], reason, page.body))
                )
            else:
                ready.append(Item(item.key, story=article))
        return ready, deferred, errors

    def _host(self, index: int) -> str:
        parts = urlsplit(self.feeds[index].url)
        return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"

    def poll_all(self) -> list[PollReport]:
        """Poll every feed once (concurrently), whatever its schedule; one report per feed, in order.

        A worker takes a feed only when its host has a free slot, so feeds queued behind a slow
        host never occupy the workers that other hosts' feeds need.
        """
        results: list[PollReport | None] = [None] * len(self.feeds)
        waiting = list(range(len(self.feeds)))
        busy: Counter[str] = Counter()
        per_host = self.settings.limits.per_host
        in_flight: dict[Future[PollReport], int] = {}
        with ThreadPoolExecutor(self.settings.workers, thread_name_prefix="feed") as pool:
            while waiting or in_flight:
                held: list[int] = []
                for index in waiting:
                    host = self._host(index)
                    if len(in_flight) < self.settings.workers and busy[host] < per_host:
                        busy[host] += 1
                        in_flight[pool.submit(self.poll, self.feeds[index])] = index
                    else:
                        held.append(index)
                waiting = held
                done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                for future in done:
                    index = in_flight.pop(future)
                    busy[self._host(index)] -= 1
                    results[index] = future.result()
        return [result for result in results if result is not None]

    def run_once(self) -> DeliveryReport:
        """Poll every feed once (concurrently), whatever its schedule; the counts of all of them."""
        total = DeliveryReport()
        for result in self.poll_all():
            total.add(result.report)
        return total

    def _finish(
        self,
        done: set[Future[PollReport]],
        in_flight: dict[Future[PollReport], int],
        busy: Counter[str],
        due: list[tuple[float, int]],
        outage: _Outage,
        total: DeliveryReport,
    ) -> int:
        """Take in finished polls and schedule their next; returns how many finished."""
        for future in done:
            index = in_flight.pop(future)
            busy[self._host(index)] -= 1
            try:
                result = future.result()
            except Exception:  # poll() records its own failures; this is the state store failing
                log.exception("feed %s: poll could not be recorded", self.feeds[index].name)
                heapq.heappush(due, (time.time() + self.settings.max_backoff_s, index))
                continue
            total.add(result.report)
            if result.kafka_error is not None:
                outage.begin(time.time(), result.kafka_error)
                outage.held.append(index)  # polled again as soon as Kafka answers
            else:
                heapq.heappush(due, (result.next_due, index))
        return len(done)

    def run(self, stop: threading.Event, *, max_polls: int | None = None) -> DeliveryReport:
        """Poll each feed when it is due until ``stop`` is set (or ``max_polls`` polls finished).

        When Kafka stops acknowledging, polls pause: the cluster is checked with a capped backoff,
        a line says so once a minute, and polling resumes by itself once it answers, first with the
        feeds whose entries it did not acknowledge. Those entries are not kept in memory: the state
        records only acknowledged entries and keeps the feed's validators, so the next poll fetches
        them again.

        On stop, no new poll starts; polls in flight finish what Kafka already has and record it, or
        leave their entries for the next run. Nothing is half-recorded.
        """
        total = DeliveryReport()
        now = time.time()
        due: list[tuple[float, int]] = []
        for index, spec in enumerate(self.feeds):
            record = self.store.get(spec.name)
            interval = spec.interval_s or self.settings.interval_s
            # A persisted next_due survives a restart, but a shortened interval takes effect at once.
            start = now if record.next_due is None else min(record.next_due, now + interval)
            heapq.heappush(due, (start, index))
        in_flight: dict[Future[PollReport], int] = {}
        busy: Counter[str] = Counter()
        per_host = self.settings.limits.per_host
        polls = 0
        next_expiry = now
        outage = _Outage(self.publisher, self.settings.kafka_probe_max_s, self.settings.kafka_notice_s)
        with ThreadPoolExecutor(self.settings.workers, thread_name_prefix="feed") as pool:
            while not stop.is_set() and (max_polls is None or polls < max_polls):
                now = time.time()
                if outage.active and outage.over(now):
                    for index in outage.held:  # what they fetched was not recorded: fetch it again
                        heapq.heappush(due, (now, index))
                    outage.held.clear()
                if outage.active:
                    if in_flight:
                        done, _ = wait(list(in_flight), timeout=1.0, return_when=FIRST_COMPLETED)
                    else:
                        done = set()
                        wake = min(outage.next_probe, outage.next_notice) - time.time()
                        stop.wait(min(1.0, max(0.0, wake)))
                    polls += self._finish(done, in_flight, busy, due, outage, total)
                    continue
                if now >= next_expiry:
                    expired = self.store.expire(now - self.settings.seen_ttl_s)
                    if expired:
                        log.info(
                            "forgot %d entries not listed for %.0f days",
                            expired,
                            self.settings.seen_ttl_s / 86400,
                        )
                    next_expiry = now + 3600
                held: list[tuple[float, int]] = []
                while due and due[0][0] <= now and len(in_flight) < self.settings.workers:
                    entry = heapq.heappop(due)
                    host = self._host(entry[1])
                    if busy[host] >= per_host:  # its host is busy: a worker would only wait for it
                        held.append(entry)
                        continue
                    busy[host] += 1
                    in_flight[pool.submit(self.poll, self.feeds[entry[1]])] = entry[1]
                for entry in held:
                    heapq.heappush(due, entry)
                # A feed due now but held (its host or every worker busy) waits for a poll to end.
                wake = min(1.0, due[0][0] - now) if due and due[0][0] > now else 1.0
                if not in_flight:
                    stop.wait(wake)
                    continue
                done, _ = wait(list(in_flight), timeout=wake, return_when=FIRST_COMPLETED)
                polls += self._finish(done, in_flight, busy, due, outage, total)
            self.stopping.set()
            for future in in_flight:
                try:
                    total.add(future.result().report)
                except Exception:
                    log.exception("feed %s: poll could not be recorded", self.feeds[in_flight[future]].name)
        return total


class _Outage:
    """Kafka not acknowledging: when to check it next (capped backoff) and when to say so again."""

    def __init__(self, publisher: Publisher, max_probe_s: float, notice_s: float) -> None:
        self.publisher = publisher
        self.max_probe_s = max_probe_s
        self.notice_s = notice_s
        self.since: float | None = None
        self.next_probe = 0.0
        self.next_notice = 0.0
        self.last_notice = float("-inf")
        self.delay = 1.0
        self.held: list[int] = []

    @property
    def active(self) -> bool:
        return self.since is not None

    def begin(self, now: float, error: str) -> None:
        if self.since is not None:
            return
        self.since, self.delay = now, min(1.0, self.max_probe_s)
        self.next_probe, self.next_notice = now + self.delay, now + self.notice_s
        # A broker that comes and goes is reported once a minute too, not at every outage.
        level = logging.WARNING if now - self.last_notice >= self.notice_s else logging.DEBUG
        self.last_notice = now
        log.log(
            level,
            "Kafka at %s does not acknowledge (%s): polls pause until it answers (checked with "
            "backoff up to %.0fs); what it did not acknowledge is fetched again then",
            self.publisher.config.bootstrap_servers,
            error,
            self.max_probe_s,
            extra={"kind": "kafka"},
        )

    def over(self, now: float) -> bool:
        """Check Kafka when due; True once it answers again."""
        assert self.since is not None
        if now >= self.next_notice:
            log.warning(
                "still waiting for Kafka at %s: %.0fs without it, next check in %.0fs",
                self.publisher.config.bootstrap_servers,
                now - self.since,
                max(0.0, self.next_probe - now),
                extra={"kind": "kafka"},
            )
            self.last_notice, self.next_notice = now, now + self.notice_s
        if now < self.next_probe:
            return False
        if not self.publisher.reachable(min(5.0, self.max_probe_s)):
            self.delay = min(self.delay * 2, self.max_probe_s)
            self.next_probe = time.time() + self.delay
            return False
        log.warning(
            "Kafka at %s answers again after %.0fs; polls resume",
            self.publisher.config.bootstrap_servers,
            time.time() - self.since,
            extra={"kind": "kafka"},
        )
        self.since = None
        return True


def items_from_feed(data: bytes, source: str, url: str, fetched_at: str) -> list[Item]:
    """Stories and dead letters from one feed document (RSS, Atom, JSON Feed, ninjs, NewsML-G2)."""
    return parse_document(data, source=source, origin=url, fetched_at=fetched_at).items


def poll_feeds(
    publisher: Publisher,
    state_dir: str | os.PathLike[str],
    feeds: list[FeedSpec],
    *,
    allow_private: bool,
    timeout_s: float,
    max_bytes: int,
    settings: FeedSettings | None = None,
) -> DeliveryReport:
    """One pass over every feed; a failing feed is logged and recorded, never stops the others."""
    base = settings or FeedSettings()
    limits = replace(
        base.limits,
        allow_private=allow_private,
        connect_timeout_s=timeout_s,
        read_timeout_s=timeout_s,
        max_bytes=max_bytes,
    )
    with FeedConnector(publisher, state_dir, feeds, replace(base, limits=limits)) as connector:
        return connector.run_once()

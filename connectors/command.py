"""`wirestream connect files|feeds|status`: the connectors' command line.

Kept beside the connectors so that wirestream/cli.py only wires it in; heavy imports (feedparser,
kafka-python) happen when a command runs, not when the CLI starts.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from wirestream.config import Config
from wirestream.errors import UserError

log = logging.getLogger("wirestream.connect")


def add_parsers(commands: Any, common: Callable[..., None]) -> None:
    """The `connect` command and its sources, under the CLI's subcommands."""
    connect = commands.add_parser("connect", help="publish stories from a source to Kafka")
    sources = connect.add_subparsers(dest="kind", required=True, metavar="SOURCE")

    files = sources.add_parser(
        "files",
        help="publish agency drops: TURAN text, ninjs, NewsML-G2, JSON Feed, RSS/Atom, raw JSON/NDJSON",
    )
    common(files)
    files.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    files.add_argument("--source", help="source name recorded on each story (default: 'files')")
    files.add_argument("--log-format", choices=["text", "json"], help="log lines as text or JSON")

    feeds = sources.add_parser(
        "feeds", help="poll feeds (RSS, Atom, JSON Feed, ninjs, NewsML-G2) and publish new entries"
    )
    common(feeds)
    feeds.add_argument(
        "urls", nargs="*", metavar="URL", help="feed URLs (or list them under 'feeds' in --config)"
    )
    feeds.add_argument(
        "--once",
        action="store_true",
        help="poll every feed once and exit (default: run until SIGTERM/SIGINT)",
    )
    feeds.add_argument(
        "--allow-private-networks",
        action="store_true",
        default=None,
        help="allow feed and article hosts on loopback/private/link-local addresses (SSRF guard off)",
    )
    feeds.add_argument(
        "--interval",
        type=float,
        metavar="SECONDS",
        help="default seconds between polls (env WIRESTREAM_FEED_INTERVAL_S)",
    )
    feeds.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics on PORT (env WIRESTREAM_METRICS_PORT)",
    )
    feeds.add_argument("--log-format", choices=["text", "json"], help="log lines as text or JSON")

    status = sources.add_parser("status", help="feed health from the connector state")
    common(status, kafka=False)
    status.add_argument("--json", action="store_true", help="print JSON")


def _counts(report: Any) -> str:
    return (
        f"published {report.published}, dead-lettered {report.dead_lettered}, "
        f"already published {report.skipped}, already dead-lettered {report.skipped_dead_letters}"
    )


def _summary(report: Any) -> None:
    print(f"{_counts(report)}, failed {report.failed}")


def _feeds_once(results: list[Any]) -> int:
    """One line per feed and the totals on stdout; exit status 1 when any feed failed."""
    from connectors.delivery import DeliveryReport

    total = DeliveryReport()
    width = max((len(result.feed) for result in results), default=0)
    for result in results:
        total.add(result.report)
        if result.status == "failed":
            line = f"failed ({result.error_kind}): {result.error}"
            if result.report.dead_lettered:
                line += f"; dead-lettered {result.report.dead_lettered}"
        elif result.failed:
            line = f"failed: {result.report.failed} entries left for the next run; {_counts(result.report)}"
        elif result.status == "not_modified":
            line = "unchanged (304)"
        else:
            line = f"{result.status}: {_counts(result.report)}"
        print(f"{result.feed:<{width}}  {line}")
    failed = [result.feed for result in results if result.failed]
    unchanged = sum(1 for result in results if result.status == "not_modified")
    print(
        f"{len(results)} feed(s): {len(results) - len(failed) - unchanged} ok, {unchanged} unchanged, "
        f"{len(failed)} failed; {_counts(total)}"
    )
    if failed:
        named = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        print(
            f"error: {len(failed)} of {len(results)} feed(s) failed ({named}); "
            "the next run retries them (see above, or `wirestream connect status`)",
            file=sys.stderr,
        )
        return 1
    return 0


def _report(report: Any) -> int:
    _summary(report)
    if report.failed:
        print(
            f"error: {report.failed} feed(s) or item(s) failed (see the log); the next run retries them",
            file=sys.stderr,
        )
        return 1
    return 0


def _files(args: argparse.Namespace, config: Config) -> int:
    from connectors.files import expand_paths, publish_files
    from connectors.publisher import Publisher

    paths = expand_paths(args.paths)
    with Publisher(config) as publisher:
        report = publish_files(
            publisher, config.state_dir, paths, config.source_name or "files", config.max_body_bytes
        )
    return _report(report)


def _feeds(args: argparse.Namespace, config: Config) -> int:
    from connectors.feeds import FeedConnector, FeedSettings, FeedSpec
    from connectors.observability import FeedMetrics
    from connectors.publisher import Publisher

    specs = [FeedSpec.from_config(u) for u in args.urls] or [FeedSpec.from_config(f) for f in config.feeds]
    if not specs:
        raise UserError("no feeds given: pass URLs or list them under 'feeds:' in a --config file")
    try:
        settings = FeedSettings.from_config(config)
    except ValueError as exc:
        raise UserError(f"feed settings: {exc}") from None
    metrics = FeedMetrics()
    server = None
    if config.metrics_port is not None:
        try:
            server = metrics.serve(config.metrics_port, config.metrics_address)
        except OSError as exc:
            raise UserError(
                f"cannot serve metrics on {config.metrics_address}:{config.metrics_port}: {exc}"
            ) from None
    try:
        with (
            Publisher(config) as publisher,
            FeedConnector(publisher, config.state_dir, specs, settings, metrics) as connector,
        ):
            if args.once:
                return _feeds_once(connector.poll_all())
            stop = threading.Event()
            previous = {
                sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
            }
            started = time.monotonic()
            log.info(
                "polling %d feed(s) until SIGTERM/SIGINT%s",
                len(specs),
                f"; metrics on http://{config.metrics_address}:{config.metrics_port}/metrics"
                if server
                else "",
            )
            try:
                report = connector.run(stop)
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            log.info("stopped after %.0fs", time.monotonic() - started)
            _summary(report)  # failures were logged as they happened; the state keeps them for `status`
            return 0
    finally:
        if server is not None:
            server.shutdown()


def _status(args: argparse.Namespace, config: Config) -> int:
    from connectors.feeds import FeedSpec
    from connectors.feedstate import FeedStore, describe

    try:
        store = FeedStore(config.state_dir, create=False)
    except FileNotFoundError:
        raise UserError(
            f"no feed state under {config.state_dir}: no feed has been polled with this --state-dir"
        ) from None
    intervals = {}
    for entry in config.feeds:
        spec = FeedSpec.from_config(entry)
        intervals[spec.name] = spec.interval_s or config.feed_interval_s
    try:
        now = time.time()
        rows = [describe(r, now, intervals.get(r.name, config.feed_interval_s)) for r in store.records()]
    finally:
        store.close()
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        healthy = sum(1 for row in rows if row["health"] == "ok")
        print(f"{len(rows)} feed(s): {healthy} ok, {len(rows) - healthy} not ok")
        for row in rows:
            errors = ", ".join(f"{kind} {count}" for kind, count in sorted(row["errors"].items())) or "none"
            print(f"\n{row['feed']}  [{row['health']}]  {row['url']}")
            print(
                f"  last success {row['last_success'] or 'never'}, next poll {row['next_due'] or '-'}; "
                f"fetches {row['fetches']} ({row['not_modified']} unchanged)"
            )
            print(
                f"  new entries {row['new_entries']}, published {row['published']}, "
                f"dead-lettered {row['dead_lettered']}, remembered {row['remembered_entries']}; errors: {errors}"
            )
            if row["health"] != "ok" and row["last_error"]:
                print(
                    f"  last error at {row['last_error_at']} ({row['last_error_kind']}): {row['last_error']}"
                )
    return 1 if any(row["health"].startswith("failing") for row in rows) else 0


def run(args: argparse.Namespace, load: Callable[..., Config]) -> int:
    """Run a `connect` subcommand; ``load`` is the CLI's config loader (flags > env > file)."""
    overrides: dict[str, Any] = {}
    if args.kind == "files":
        overrides["source_name"] = args.source
    if args.kind == "feeds":
        overrides.update(
            allow_private_networks=args.allow_private_networks,
            feed_interval_s=args.interval,
            metrics_port=args.metrics_port,
        )
    if args.kind in ("files", "feeds"):
        overrides["log_format"] = args.log_format
    config = load(args, **overrides)
    if config.log_format not in ("text", "json"):
        raise UserError(f"log_format {config.log_format!r}: use 'text' or 'json'")
    if config.log_format == "json":
        from connectors.observability import use_json_logs

        use_json_logs()
    handlers = {"files": _files, "feeds": _feeds, "status": _status}
    return handlers[args.kind](args, config)

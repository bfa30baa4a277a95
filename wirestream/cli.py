"""The `wirestream` command line: thin wrappers that load config and call the stages."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from wirestream.config import Config, load_config
from wirestream.errors import UserError

log = logging.getLogger("wirestream")


def _common(parser: argparse.ArgumentParser, kafka: bool = True) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="YAML config; every key can be overridden by WIRESTREAM_<KEY>"
    )
    parser.add_argument(
        "--state-dir", metavar="DIR", help="connector state and local broker data (env WIRESTREAM_STATE_DIR)"
    )
    if kafka:
        parser.add_argument(
            "--bootstrap-servers",
            metavar="HOST:PORT",
            help="Kafka bootstrap servers (env WIRESTREAM_BOOTSTRAP_SERVERS)",
        )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")


def _config(args: argparse.Namespace, **extra: Any) -> Config:
    overrides = {
        "state_dir": getattr(args, "state_dir", None),
        "bootstrap_servers": getattr(args, "bootstrap_servers", None),
        **extra,
    }
    return load_config(args.config, overrides)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wirestream",
        description="Wire stories from feeds and agency drops, through Kafka and Beam, into Parquet.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    kafka = commands.add_parser("kafka", help="run the local single-node Kafka broker")
    kafka_commands = kafka.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (
        ("up", "start it (idempotent)"),
        ("status", "show pid, address, data and log paths"),
        ("down", "stop it"),
    ):
        sub = kafka_commands.add_parser(action, help=text)
        _common(sub, kafka=False)
        sub.add_argument("--port", type=int, help="broker port (default 9092, env WIRESTREAM_BROKER_PORT)")
        sub.add_argument("--data-dir", metavar="DIR", help="broker data folder (kept across down/up)")

    connect = commands.add_parser("connect", help="publish stories from a source to Kafka")
    sources = connect.add_subparsers(dest="kind", required=True, metavar="SOURCE")
    files = sources.add_parser("files", help="publish wire-story files: plain text, JSON or NDJSON")
    _common(files)
    files.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    files.add_argument("--source", help="source name recorded on each story (default: 'files')")
    feeds = sources.add_parser("feeds", help="fetch RSS/Atom feeds and publish their entries")
    _common(feeds)
    feeds.add_argument(
        "urls", nargs="*", metavar="URL", help="feed URLs (or list them under 'feeds' in --config)"
    )
    feeds.add_argument(
        "--allow-private-networks",
        action="store_true",
        default=None,
        help="allow loopback/private feed hosts",
    )

    run = commands.add_parser("run", help="process what Kafka holds that the dataset lacks, commit, exit")
    _common(run)
    run.add_argument("--output", metavar="DIR", help="dataset folder (env WIRESTREAM_OUTPUT)")
    run.add_argument("--runner", choices=["direct"], help="Beam runner (default direct)")

    demo = commands.add_parser("demo", help="broker + bundled sample feeds + pipeline, end to end")
    _common(demo)
    demo.add_argument("--output", metavar="DIR", required=True, help="dataset folder to write")

    inspect = commands.add_parser("inspect", help="summarise a dataset on disk")
    inspect.add_argument("output", metavar="DIR")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    return parser


def _print(lines: list[str]) -> None:
    for line in lines:
        print(line)


def cmd_kafka(args: argparse.Namespace) -> int:
    from wirestream.broker import LocalBroker

    config = _config(args, broker_port=args.port, broker_data_dir=args.data_dir)
    broker = LocalBroker(config)
    if args.action == "up":
        started, seconds = broker.up()
        if started:
            print(f"kafka broker started on {broker.bootstrap} in {seconds:.1f}s")
        else:
            print(
                f"kafka broker already running on {broker.bootstrap} (pid {broker.status().pid}); nothing to do"
            )
        _print(broker.status().lines())
    elif args.action == "status":
        status = broker.status()
        _print(status.lines())
        return 0 if status.running else 3
    else:
        print("kafka broker stopped" if broker.down() else "kafka broker was not running")
    return 0


def _report(report: Any) -> int:
    print(
        f"published {report.published}, dead-lettered {report.dead_lettered}, "
        f"already published {report.skipped}, failed {report.failed}"
    )
    if report.failed:
        print(
            f"error: {report.failed} item(s) were not acknowledged by Kafka; re-run to retry them",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_connect(args: argparse.Namespace) -> int:
    from connectors.publisher import Publisher

    if args.kind == "files":
        from connectors.files import expand_paths, publish_files

        config = _config(args, source_name=args.source)
        paths = expand_paths(args.paths)
        with Publisher(config) as publisher:
            return _report(publish_files(publisher, config.state_dir, paths, config.source_name or "files"))
    from connectors.feeds import FeedSpec, poll_feeds

    config = _config(args, allow_private_networks=args.allow_private_networks)
    specs = [FeedSpec.from_config(u) for u in args.urls] or [FeedSpec.from_config(f) for f in config.feeds]
    if not specs:
        raise UserError("no feeds given: pass URLs or list them under 'feeds:' in a --config file")
    with Publisher(config) as publisher:
        report = poll_feeds(
            publisher,
            config.state_dir,
            specs,
            allow_private=config.allow_private_networks,
            timeout_s=config.http_timeout_s,
            max_bytes=config.max_body_bytes,
        )
    return _report(report)


def _output(args: argparse.Namespace, config: Config) -> str:
    output = args.output or config.output
    if not output:
        raise UserError("no output folder: pass --output DIR or set WIRESTREAM_OUTPUT")
    return str(output)


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.run import run_batch

    config = _config(args, runner=args.runner)
    report = run_batch(config, _output(args, config))
    if report.batch is None:
        print("nothing new on the raw topic; no batch written")
        return 0
    print(
        f"batch {report.batch} committed in {report.seconds:.1f}s: read {report.records}, wrote {report.rows}, "
        f"duplicates dropped {report.duplicates_dropped}, dead letters {report.dead_letters}"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from wirestream.demo import run_demo

    config = _config(args)
    return run_demo(config, args.output)


def cmd_inspect(args: argparse.Namespace) -> int:
    from wirestream.summary import summarize

    summary = summarize(args.output)
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2, sort_keys=True))
    else:
        _print(summary.lines())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("kafka", "apache_beam", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    handlers = {
        "kafka": cmd_kafka,
        "connect": cmd_connect,
        "run": cmd_run,
        "demo": cmd_demo,
        "inspect": cmd_inspect,
    }
    try:
        return handlers[args.command](args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

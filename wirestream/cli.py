"""The `wirestream` command line: thin wrappers that load config and call the stages."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wirestream.config import RUNNERS, Config, load_config
from wirestream.configdoc import add_parser as add_config_parser
from wirestream.configdoc import command as configdoc_command
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
    config = load_config(args.config, overrides)
    from connectors.observability import protect_secrets

    # Every command: kafka-python logs its whole configuration, passwords included, at DEBUG.
    protect_secrets(config.sasl_password, config.ssl_password, config.broker_sasl_password)
    return config


def _table_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="YAML config; every key can be overridden by WIRESTREAM_<KEY>"
    )
    parser.add_argument(
        "--retention-days", type=float, metavar="D", help="snapshot retention (default 7, config key)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")


def _dataset(
    args: argparse.Namespace, output: str | None = None, existing: bool = True
) -> tuple[Any, Config]:
    """The dataset a command reads or tends; unless it may create one (``existing`` False), a
    missing folder of the embedded catalog is refused before anything is created."""
    from pipeline.dataset import Dataset, catalog_settings

    config = load_config(args.config, {"snapshot_retention_days": getattr(args, "retention_days", None)})
    folder = _output(argparse.Namespace(output=output or getattr(args, "output", None)), config)
    dataset = Dataset(folder, catalog_settings(config))
    if existing and dataset.embedded and not Path(folder).exists():
        raise UserError(f"{folder} does not exist: no wirestream dataset there")
    return dataset, config


def _kafka_config(args: argparse.Namespace, **extra: Any) -> Config:
    """`_config` for a command that reads or writes Kafka: a cluster at the local broker's address
    that is not the one this state dir started is refused (`broker.check_cluster`)."""
    from wirestream.broker import check_cluster

    config = _config(args, **extra)
    check_cluster(config)
    return config


@contextlib.contextmanager
def _no_new_folder_on_error(output: str) -> Iterator[None]:
    """A run that ends in a user's mistake (Kafka unreachable, say) leaves no folder behind: the
    output folder it created goes again while it holds nothing but the run's lock file."""
    folder = Path(output)
    existed = folder.exists()
    try:
        yield
    except UserError:
        if not existed and folder.is_dir() and {p.name for p in folder.iterdir()} <= {"_lock"}:
            (folder / "_lock").unlink(missing_ok=True)
            folder.rmdir()
        raise


def _check_taxonomy(config: Config) -> None:
    """A taxonomy file that cannot be used stops a command before it reads or publishes anything."""
    from pipeline.tagging import load_taxonomy

    load_taxonomy(config.taxonomy)


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
        if action == "up":
            sub.add_argument(
                "--brokers",
                type=int,
                choices=(1, 3),
                help="1 (default) or 3: a replicated KRaft cluster on --port, --port+3, --port+6",
            )

    from connectors.command import add_parsers as add_connect_parsers

    add_connect_parsers(commands, _common)  # connect files | feeds | status

    from wirestream.services import add_parsers as add_service_parsers

    add_service_parsers(commands, _common)  # catalog up|status|down, storage up|status|down|credentials

    from wirestream.flink import add_parsers as add_flink_parsers

    add_flink_parsers(commands, _common)  # flink up|status|down

    run = commands.add_parser("run", help="process what Kafka holds that the dataset lacks, commit, exit")
    _common(run)
    run.add_argument("--output", metavar="DIR", help="dataset folder (env WIRESTREAM_OUTPUT)")
    run.add_argument("--runner", choices=RUNNERS, help="Beam runner (default direct)")
    run.add_argument(
        "--continuous", action="store_true", help="keep committing new stories until SIGTERM/SIGINT"
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics on /metrics (config metrics_port)",
    )
    run.add_argument(
        "--log-format", choices=("text", "json"), help="log lines as text or JSON (config log_format)"
    )

    backfill = commands.add_parser("backfill", help="reprocess a time range and replace its partitions")
    _common(backfill)
    backfill.add_argument(
        "--since", required=True, type=_moment, metavar="T1", help="RFC 3339 time or date (UTC)"
    )
    backfill.add_argument(
        "--until", type=_moment, metavar="T2", help="end of the range (exclusive; default now)"
    )
    backfill.add_argument("--output", metavar="DIR", help="dataset folder (env WIRESTREAM_OUTPUT)")
    backfill.add_argument("--runner", choices=RUNNERS, help="Beam runner (default direct)")

    changes = commands.add_parser(
        "changes", help="snapshots after a given one, with the files each added and removed, as JSON lines"
    )
    changes.add_argument("output", metavar="DIR")
    changes.add_argument(
        "--since-snapshot", type=int, metavar="ID", help="list snapshots after this one (default: all kept)"
    )
    _table_options(changes)

    load = commands.add_parser("load", help="load committed snapshots into a warehouse table, idempotently")
    load.add_argument("warehouse", choices=["duckdb"])
    load.add_argument("--db", required=True, metavar="FILE", help="DuckDB database file")
    load.add_argument("--output", metavar="DIR", help="dataset folder (env WIRESTREAM_OUTPUT)")
    load.add_argument("--table", default="stories", help="target table (default stories)")
    _table_options(load)

    compact = commands.add_parser(
        "compact", help="merge small files of closed partitions in one snapshot, then run `maintain`"
    )
    compact.add_argument("output", metavar="DIR")
    compact.add_argument(
        "--closed-after-days", type=int, default=1, help="partitions older than this are closed"
    )
    _table_options(compact)

    maintain = commands.add_parser(
        "maintain", help="expire snapshots older than the retention and remove files nothing references"
    )
    maintain.add_argument("output", metavar="DIR")
    _table_options(maintain)

    repair = commands.add_parser(
        "repair", help="make a table whose files cannot be read in full readable again; says what to re-read"
    )
    repair.add_argument("--output", metavar="DIR", help="dataset folder (env WIRESTREAM_OUTPUT)")
    _table_options(repair)

    migrate = commands.add_parser(
        "migrate", help="register a manifest-format dataset's live files in new Iceberg tables"
    )
    migrate.add_argument("--from", dest="source", required=True, metavar="OLD", help="manifest-format folder")
    migrate.add_argument("--output", metavar="DIR", help="dataset folder (env WIRESTREAM_OUTPUT)")
    _table_options(migrate)

    demo = commands.add_parser("demo", help="broker + bundled sample feeds + pipeline, end to end")
    _common(demo)
    demo.add_argument("--output", metavar="DIR", required=True, help="dataset folder to write")
    demo.add_argument(
        "--port",
        type=int,
        help="port of the local broker the demo starts (default 9092, env WIRESTREAM_BROKER_PORT)",
    )
    demo.add_argument(
        "--keep-broker", action="store_true", help="leave the broker the demo started running afterwards"
    )

    inspect = commands.add_parser("inspect", help="summarise what the table holds, now or as of a snapshot")
    inspect.add_argument("output", metavar="DIR")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.add_argument(
        "--as-of",
        metavar="SNAPSHOT|TIME",
        help="a snapshot id, or an RFC 3339 time: the table as it was then",
    )
    _table_options(inspect)

    from wirestream.deadletters import SOURCES

    letters = commands.add_parser(
        "dead-letters",
        help="list dead letters with their reasons; `republish --from FILE` sends fixed stories",
    )
    _common(letters)
    letters.add_argument(
        "--source", choices=SOURCES, help="only the connectors' (Kafka) or the pipeline's (table)"
    )
    letters.add_argument(
        "--since", type=_moment, metavar="T", help="only those since T (RFC 3339 time or date, UTC)"
    )
    letters.add_argument(
        "--output", metavar="DIR", help="dataset folder of the pipeline's (env WIRESTREAM_OUTPUT)"
    )
    letters.add_argument(
        "--json", action="store_true", help="one JSON object a line, payload and story included"
    )
    letter_actions = letters.add_subparsers(
        dest="action", metavar="[republish]", help="without it: list the dead letters"
    )
    republish = letter_actions.add_parser(
        "republish", help="validate fixed raw stories (JSON lines) and send them to the raw topic"
    )
    republish.add_argument(
        "--from", dest="source_file", required=True, metavar="FILE", help="one raw story a line"
    )
    _common(republish)

    report = commands.add_parser(
        "report", help="write one self-contained HTML page of charts about the table"
    )
    report.add_argument("--output", metavar="DIR", help="dataset folder (env WIRESTREAM_OUTPUT)")
    report.add_argument("--html", required=True, metavar="FILE", help="the page to write")
    report.add_argument(
        "--connectors", action="store_true", help="also chart the connectors' dead letters (reads Kafka)"
    )
    report.add_argument(
        "--bootstrap-servers",
        metavar="HOST:PORT",
        help="Kafka, for --connectors (env WIRESTREAM_BOOTSTRAP_SERVERS)",
    )
    _table_options(report)
    add_config_parser(commands)  # config reference
    return parser


def _print(lines: list[str]) -> None:
    for line in lines:
        print(line)


def _kafka_cluster(action: str, cluster: Any) -> int:
    """`kafka up --brokers 3`, and `kafka status|down` of the cluster it started."""
    if action == "up":
        started, seconds = cluster.up()
        what = f"started in {seconds:.1f}s" if started else "already running; nothing to do"
        print(f"kafka cluster of {cluster.brokers} brokers {what}; bootstrap {cluster.bootstrap}")
    elif action == "down":
        print("kafka cluster stopped" if cluster.down() else "kafka cluster was not running")
        return 0
    status = cluster.status()
    _print(status.lines())
    return 0 if status.running else 3


def cmd_kafka(args: argparse.Namespace) -> int:
    from wirestream.broker import LocalBroker, LocalCluster

    config = _config(args, broker_port=args.port, broker_data_dir=args.data_dir)
    cluster = LocalCluster(config, getattr(args, "brokers", None))
    if cluster.brokers > 1:
        return _kafka_cluster(args.action, cluster)
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
    elif broker.down():
        print("kafka broker stopped")
    else:
        elsewhere = broker.status().elsewhere
        where = f" (this state dir's broker runs on port {elsewhere})" if elsewhere is not None else ""
        print(f"kafka broker was not running on {broker.bootstrap}{where}")
    return 0


def cmd_services(args: argparse.Namespace) -> int:
    from wirestream.services import run as run_services

    return run_services(args, _config)


def cmd_flink(args: argparse.Namespace) -> int:
    from wirestream.flink import run as run_flink

    return run_flink(args, _config)


def cmd_connect(args: argparse.Namespace) -> int:
    from connectors.command import run as run_connect

    return run_connect(args, _kafka_config)


def _output(args: argparse.Namespace, config: Config) -> str:
    output = args.output or config.output
    if not output:
        raise UserError("no output folder: pass --output DIR or set WIRESTREAM_OUTPUT")
    if "://" in str(output):
        raise UserError(
            f"--output {output}: the output is a folder on this machine (the embedded catalog and its "
            "tables, or only staging); to keep the tables on object storage, set catalog_uri and "
            "catalog_warehouse (e.g. s3://bucket/prefix)"
        )
    if Path(output).exists() and not Path(output).is_dir():
        raise UserError(f"{output} is a file, not a dataset folder")
    return str(output)


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an RFC 3339 time or a date (YYYY-MM-DD)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _print_batch(report: Any) -> None:
    print(
        f"batch {report.batch} committed in {report.seconds:.1f}s (commit {report.commit_seconds:.3f}s): "
        f"read {report.records}, wrote {report.rows}, "
        f"duplicates dropped {report.duplicates_dropped}, dead letters {report.dead_letters}",
        flush=True,
    )


def _observed_batches(config: Config) -> Callable[[Any], None]:
    """What a run does with each committed batch: print it, and with ``metrics_port``, count it
    and measure the consumer lag on the endpoint it serves; JSON log lines with ``log_format``."""
    if config.log_format not in ("text", "json"):
        raise UserError(f"log_format {config.log_format!r}: use 'text' or 'json'")
    if config.log_format == "json":
        from connectors.observability import use_json_logs

        use_json_logs()
    if not config.metrics_port:
        return _print_batch
    from kafka.errors import KafkaError

    from pipeline.kafka_source import end_offsets
    from pipeline.observability import PipelineMetrics

    metrics = PipelineMetrics()
    try:
        metrics.serve(config.metrics_port, config.metrics_address)
    except OSError as exc:
        raise UserError(
            f"cannot serve metrics on {config.metrics_address}:{config.metrics_port}: {exc.strerror or exc}"
        ) from None
    log.info("metrics on http://%s:%d/metrics", config.metrics_address, config.metrics_port)

    def observed(report: Any) -> None:
        _print_batch(report)
        metrics.observe(report)
        position = (report.commit or {}).get("position", {}).get(config.raw_topic, {})
        try:
            ends = end_offsets(config.kafka_client_options(), config.raw_topic)
        except KafkaError as exc:  # the lag waits for the next batch; the batch is committed
            log.debug("consumer lag not measured: %s", exc)
            return
        metrics.observe_lag(config.raw_topic, ends, {int(p): int(o) for p, o in position.items()})

    return observed


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.run import run_continuous, run_until_caught_up
    from wirestream.broker import check_cluster

    config = _config(args, runner=args.runner, metrics_port=args.metrics_port, log_format=args.log_format)
    output = _output(args, config)
    _check_taxonomy(config)
    check_cluster(config)
    on_commit = _observed_batches(config)
    if args.continuous:
        stop = threading.Event()

        def finish(signum: int, _frame: Any) -> None:
            if stop.is_set():  # a second signal abandons the batch in flight; the next start discards it
                raise KeyboardInterrupt
            log.info("signal %d: finishing the batch in flight, then stopping", signum)
            stop.set()

        signal.signal(signal.SIGTERM, finish)
        signal.signal(signal.SIGINT, finish)
        log.info("continuous run: committing to %s every %.1fs", output, config.commit_interval_s)
        with _no_new_folder_on_error(output):
            batches = run_continuous(config, output, stop, on_commit=on_commit)
        print(f"stopped after {batches} batch(es)")
        return 0
    with _no_new_folder_on_error(output):
        reports = run_until_caught_up(config, output, on_commit=on_commit)
    if not reports:
        print("nothing new on the raw topic; no batch written")
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    from pipeline.run import run_backfill
    from wirestream.broker import check_cluster
    from wirestream.progress import Progress

    config = _config(args, runner=args.runner)
    until = args.until or datetime.now(UTC)
    if until <= args.since:
        raise UserError("--until must be later than --since")
    output = _output(args, config)
    _check_taxonomy(config)
    check_cluster(config)
    with _no_new_folder_on_error(output):
        report = run_backfill(config, output, args.since, until, progress=Progress("backfill"))
    if report.batch is None:
        print(f"Kafka holds no stories between {args.since.isoformat()} and {until.isoformat()}")
        return 0
    commit = report.commit or {}
    print(
        f"backfill batch {report.batch} committed in {report.seconds:.1f}s as snapshot {commit.get('snapshot_id')}: "
        f"read {report.records}, wrote {report.rows}, replaced {len(commit.get('removes', []))} file(s), "
        f"dead letters {report.dead_letters}"
    )
    return 0


def cmd_changes(args: argparse.Namespace) -> int:
    from wirestream.warehouse import changes_since

    dataset, _config = _dataset(args, args.output)
    for change in changes_since(dataset, args.since_snapshot):
        print(json.dumps(change, sort_keys=True))
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from wirestream.warehouse import load_duckdb

    dataset, _config = _dataset(args)
    report = load_duckdb(dataset, args.db, args.table)
    if not report.snapshots:
        print(f"{args.db}: {args.table} is up to date; nothing to load")
    else:
        how = "the current snapshot, file by file" if report.full else f"{len(report.snapshots)} snapshot(s)"
        print(
            f"{args.db}: loaded {how} into {args.table} (up to snapshot {report.snapshots[-1]}): "
            f"+{report.rows_inserted} rows, -{report.rows_deleted} rows"
        )
    return 0


def _print_maintained(maintained: Any) -> None:
    print(
        f"expired {maintained.snapshots_expired} snapshot(s), removed {maintained.files_removed} file(s) "
        f"they alone referenced and {maintained.orphans_removed} orphan file(s)"
    )


def cmd_compact(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from pipeline.compact import compact_dataset

    dataset, config = _dataset(args, args.output)
    dataset.table()  # a folder with no table is refused before the run's lock file is made in it
    report = compact_dataset(
        dataset, args.closed_after_days, timedelta(days=config.snapshot_retention_days), config.snapshots_kept
    )
    if report.batch is None:
        print("nothing to compact")
    else:
        print(
            f"compaction batch {report.batch}: merged {report.files_merged} file(s) of {report.partitions} "
            f"partition(s), {report.rows} rows, in one snapshot"
        )
    _print_maintained(report.maintained)
    return 0


def cmd_maintain(args: argparse.Namespace) -> int:
    from datetime import timedelta

    dataset, config = _dataset(args, args.output)
    dataset.table()  # a clear error when there is no table
    with dataset.lock(wait=True):
        dataset.recover()
        _print_maintained(
            dataset.maintain(timedelta(days=config.snapshot_retention_days), keep=config.snapshots_kept)
        )
    return 0


def cmd_repair(args: argparse.Namespace) -> int:
    from wirestream.repair import repair

    dataset, _config = _dataset(args)
    report = repair(dataset)
    nothing = f"{dataset.root}: every file of the table reads; nothing to repair"
    _print(report.lines if report.changed else [nothing])
    return 0


def _explained(args: argparse.Namespace, exc: BaseException) -> int:
    """A command on a table that failed in a library: one line naming the table's file that cannot be
    read (`wirestream.repair.explain`), or ``exc`` raised again when every file reads."""
    from wirestream.repair import explain

    dataset = None
    tables = {"run", "backfill", "changes", "load", "compact", "maintain", "inspect", "report"}
    if args.command in tables | {"dead-letters"}:
        with contextlib.suppress(Exception):
            dataset, _config = _dataset(args)
    line = explain(dataset, exc)
    if line is None:
        raise exc
    print(f"error: {line}", file=sys.stderr)
    return 2


def cmd_migrate(args: argparse.Namespace) -> int:
    from pipeline.migrate import migrate

    dataset, _config = _dataset(args, existing=False)
    report = migrate(args.source, dataset)
    print(
        f"migrated {report.manifests} manifest(s): registered {report.data_files} data file(s) "
        f"({report.rows} rows; {report.rewritten} split by ingestion day) and {report.dead_letter_files} "
        f"dead-letter file(s) as snapshot {report.snapshot_id}"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from wirestream.demo import run_demo

    if args.port is not None and args.bootstrap_servers:
        raise UserError(
            "--port starts a local broker and --bootstrap-servers names an existing Kafka: pass one of them"
        )
    local = {"bootstrap_servers": f"127.0.0.1:{args.port}"} if args.port is not None else {}
    config = _config(args, broker_port=args.port, **local)
    output = _output(args, config)  # refused before a broker starts or a story is published
    _check_taxonomy(config)
    return run_demo(config, output, keep_broker=args.keep_broker)


def cmd_inspect(args: argparse.Namespace) -> int:
    from wirestream.summary import summarize

    dataset, _config = _dataset(args, args.output)
    summary = summarize(dataset, args.as_of)
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2, sort_keys=True))
    else:
        _print(summary.lines())
    return 0


def cmd_dead_letters(args: argparse.Namespace) -> int:
    from pipeline.dataset import Dataset, catalog_settings
    from wirestream.broker import check_cluster
    from wirestream.deadletters import SOURCES, list_dead_letters, read_fixed, republish

    config = _config(args)
    if args.action == "republish":
        stories = read_fixed(args.source_file)
        check_cluster(config)
        failed = [story["id"] for story, acked in republish(config, stories) if not acked]
        print(f"republished {len(stories) - len(failed)} of {len(stories)} story(ies) to {config.raw_topic}")
        if failed:
            print(f"error: Kafka did not acknowledge {len(failed)} story(ies): {failed[:5]}", file=sys.stderr)
            return 1
        return 0
    output = args.output or config.output
    sources = (args.source,) if args.source else SOURCES if output else ("connectors",)
    dataset = Dataset(_output(args, config), catalog_settings(config)) if "pipeline" in sources else None
    if "connectors" in sources:
        check_cluster(config)
    letters = list_dead_letters(config, dataset, sources, args.since)
    for letter in letters:
        print(json.dumps(letter.as_dict(), sort_keys=True) if args.json else letter.line())
    if not args.json:
        counts = ", ".join(f"{sum(1 for x in letters if x.source == s)} from the {s}" for s in sources)
        note = "" if "pipeline" in sources else "; the pipeline's are listed with --output DIR"
        print(f"{len(letters)} dead letter(s): {counts}{note}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from wirestream.report import write_report

    dataset, _settings = _dataset(args)
    kafka = _kafka_config(args) if args.connectors else None
    written = write_report(dataset, args.html, kafka)
    print(f"wrote {written.path}: {written.stories} stories, {written.dead_letters} dead letters")
    return 0


def _catalog_errors() -> tuple[type[BaseException], ...]:
    """What the Iceberg catalog client raises when the catalog itself fails mid-run (it went away,
    answered with a server error, or a commit's outcome is unknown)."""
    try:
        from pyiceberg.exceptions import CommitStateUnknownException, ServerError
        from requests.exceptions import ConnectionError as Unreachable
    except ImportError:  # pragma: no cover - both are dependencies
        return ()
    return (CommitStateUnknownException, ServerError, Unreachable)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Libraries (Beam logs on the root logger) speak at WARNING; wirestream's own loggers at INFO.
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        # kafka-python logs every failed connection attempt while it retries; wirestream says in
        # one line what failed once the client gives up (-v shows the attempts).
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    for ours in ("wirestream", "connectors", "pipeline"):
        logging.getLogger(ours).setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not args.verbose:
        # Beam logs a failing DoFn's traceback at ERROR, then raises the same exception, which ends
        # here as one line (a user's mistake or a full disk) or as its own traceback (a defect).
        logging.getLogger("apache_beam.runners.common").setLevel(logging.CRITICAL)
    handlers = {
        "kafka": cmd_kafka,
        "connect": cmd_connect,
        "catalog": cmd_services,
        "storage": cmd_services,
        "flink": cmd_flink,
        "run": cmd_run,
        "backfill": cmd_backfill,
        "changes": cmd_changes,
        "load": cmd_load,
        "compact": cmd_compact,
        "maintain": cmd_maintain,
        "migrate": cmd_migrate,
        "demo": cmd_demo,
        "inspect": cmd_inspect,
        "dead-letters": cmd_dead_letters,
        "report": cmd_report,
        "repair": cmd_repair,
        "config": configdoc_command,
    }
    try:
        code = handlers[args.command](args)
        sys.stdout.flush()  # a reader that went away is found here, not as Python exits
        return code
    except BrokenPipeError:
        # The reader went away (`wirestream changes DIR | head -1`): what it wanted was printed.
        # Python would report the pipe again when it flushes stdout at exit; point stdout elsewhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a process that SIGPIPE ended
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except _catalog_errors() as exc:
        print(f"error: the catalog failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        from pipeline.storage import refused

        refusal = refused(exc)
        if refusal:
            print(f"error: object storage refused the credentials ({refusal})", file=sys.stderr)
            return 2
        if exc.errno != errno.ENOSPC:
            return _explained(args, exc)
        print(
            f"error: no space left on the device of {exc.filename or 'the output'}: {exc.strerror}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        return _explained(args, exc)


if __name__ == "__main__":
    sys.exit(main())

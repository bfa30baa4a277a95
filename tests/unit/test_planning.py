import random

from pipeline.kafka_source import OffsetRange, cut_parts, fair_shares, part_budget


def test_pending_records_that_fit_are_all_taken():
    assert fair_shares([3, 0, 7], None) == [3, 0, 7]
    assert fair_shares([3, 0, 7], 10) == [3, 0, 7]
    assert fair_shares([], 5) == []


def test_a_batch_takes_equal_shares_and_a_small_backlog_gives_its_rest_to_the_others():
    assert fair_shares([100, 100, 100], 30) == [10, 10, 10]
    assert fair_shares([100, 2, 100], 30) == [14, 2, 14]
    # One record waiting behind a large backlog is taken at once, not after the backlog drains.
    assert fair_shares([1_000_000, 1], 50_000) == [49_999, 1]
    assert fair_shares([5, 5, 5], 4) == [2, 1, 1]


def test_shares_fill_the_budget_max_min_fairly():
    for seed in range(300):
        rng = random.Random(seed)
        pending = [rng.choice([0, 1, 3, rng.randint(0, 10_000)]) for _ in range(rng.randint(1, 8))]
        budget = rng.randint(1, 2 * sum(pending) + 1)
        shares = fair_shares(pending, budget)
        assert sum(shares) == min(budget, sum(pending)), seed
        assert all(0 <= s <= p for s, p in zip(shares, pending, strict=True)), seed
        # Max-min fair: a partition given less than it has gets every other's share, give or take one.
        for s, p in zip(shares, pending, strict=True):
            if s < p:
                assert all(s >= other - 1 for other in shares), seed


def test_parts_advance_through_every_partition_together_in_offset_order():
    ranges = [OffsetRange("t", 0, 100, 400), OffsetRange("t", 1, 0, 30), OffsetRange("t", 2, 50, 350)]
    parts = cut_parts(ranges, 100)
    assert [sum(r.size for r in part) for part in parts] == [100, 100, 100, 100, 100, 100, 30]
    assert parts[0] == [
        OffsetRange("t", 0, 100, 135),
        OffsetRange("t", 1, 0, 30),
        OffsetRange("t", 2, 50, 85),
    ]
    for partition, rng in enumerate(ranges):
        pieces = [r for part in parts for r in part if r.partition == partition]
        assert pieces[0].start == rng.start and pieces[-1].stop == rng.stop
        assert all(a.stop == b.start for a, b in zip(pieces, pieces[1:], strict=False))
    # The two long partitions move through their offsets side by side.
    for part in parts[:-1]:
        sizes = {r.partition: r.size for r in part}
        assert abs(sizes[0] - sizes[2]) <= 1
    assert cut_parts([OffsetRange("t", 0, 5, 5)], 10) == []


def test_readers_inflate_gzip_batches_as_kafka_python_does():
    import gzip

    from kafka.codec import gzip_decode
    from kafka.record import default_records

    from pipeline import kafka_source

    kafka_source.inflate_gzip_with_isal()
    assert default_records.gzip_decode is kafka_source._inflate_gzip
    rng = random.Random(3)
    for size in (0, 1, 4096, 300_000):
        payload = bytes(rng.getrandbits(8) for _ in range(size // 4)) + b"wire story " * (size // 16)
        members = gzip.compress(payload) + gzip.compress(payload[: size // 3])  # a stream of two members
        assert kafka_source._inflate_gzip(memoryview(members)) == gzip_decode(memoryview(members))


def test_deferred_reads_cover_a_restriction_exactly_once_across_splits():
    from apache_beam.io.restriction_trackers import OffsetRange as BeamOffsetRange
    from apache_beam.io.restriction_trackers import OffsetRestrictionTracker

    from pipeline.transforms import _ReadPartition

    rng = random.Random(9)
    residuals: list[BeamOffsetRange] = []

    class SplitAnyTime(OffsetRestrictionTracker):
        """A runner may split the rest of a restriction at any moment: here, before any claim."""

        def try_claim(self, position: int) -> bool:
            if rng.random() < 0.15:
                split = self.try_split(rng.random())
                if split:
                    residuals.append(split[1])
            return super().try_claim(position)

    for _ in range(500):
        start, size, step = rng.randint(0, 50), rng.randint(0, 400), rng.randint(1, 60)
        reader = _ReadPartition({}, poll_ms=1, idle_limit=1, defer=step)
        tracker = SplitAnyTime(BeamOffsetRange(start, start + size))
        residuals.clear()
        covered: list[int] = []
        for read in reader._deferred(OffsetRange("t", 0, start, start + size), tracker):
            assert 0 < read.range.size <= step
            # reads end on multiples of their size (whole blocks of offsets), or where the rest begins
            assert read.range.stop % step == 0 or read.range.stop == tracker.current_restriction().stop
            covered.extend(range(read.range.start, read.range.stop))
        tracker.check_done()  # every offset the reader kept was claimed
        rest = [o for r in residuals for o in range(r.start, r.stop)]
        assert sorted(covered + rest) == list(range(start, start + size))
        assert covered == sorted(set(covered))


def test_a_deferred_read_whose_broker_is_gone_fails_within_its_timeout():
    """A worker's consumer is given the broker's API version, so it does not connect when it is
    made; with the broker gone since planning, its read must raise, not wait for ever."""
    import threading

    from kafka.errors import KafkaTimeoutError

    from pipeline.kafka_source import CONSUMERS, DeferredRead

    options = {"bootstrap_servers": ["127.0.0.1:1"], "api_version": (4, 0), "bootstrap_timeout_ms": 1000}
    outcome: list[Exception | None] = []

    def read() -> None:
        try:
            list(DeferredRead(options, OffsetRange("gone", 0, 0, 10)).chunks())
            outcome.append(None)
        except Exception as exc:  # whatever it raised is the result
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert outcome, "the read still waits after 30 s"
    assert isinstance(outcome[0], KafkaTimeoutError)
    CONSUMERS.close_idle()


def test_a_run_of_several_parts_ends_with_a_quarter_size_part():
    def sizes(pending, size):
        out = []
        while pending:
            out.append(part_budget(pending, size))
            pending -= out[-1]
        return out

    assert sizes(100_000, 50_000) == [50_000, 37_500, 12_500]
    assert sizes(1_000_000, 50_000) == [50_000] * 19 + [37_500, 12_500]
    assert sizes(60_000, 50_000) == [47_500, 12_500]
    assert sizes(25_000, 50_000) == [25_000]  # no part under a quarter is split off
    assert sizes(30, 100) == [30] and sizes(0, 100) == []
    assert part_budget(7, None) is None
    parts = cut_parts([OffsetRange("t", 0, 0, 60), OffsetRange("t", 1, 0, 40)], 50)
    assert [sum(r.size for r in part) for part in parts] == [50, 38, 12]


def test_without_a_short_tail_every_part_but_the_last_is_full():
    """A cluster prepares no part ahead, and each part is a job with a cost to start: as few parts
    as the size allows."""
    ranges = [OffsetRange("t", 0, 0, 60), OffsetRange("t", 1, 0, 40)]
    assert [sum(r.size for r in part) for part in cut_parts(ranges, 50, short_tail=False)] == [50, 50]
    assert [sum(r.size for r in part) for part in cut_parts(ranges, 40, short_tail=False)] == [40, 40, 20]
    assert part_budget(100_000, 50_000, short_tail=False) == 50_000
    assert part_budget(30, 100, short_tail=False) == 30
    assert part_budget(7, None, short_tail=False) is None


def test_polled_records_regroup_into_whole_blocks_of_offsets():
    """`in_blocks` hands on the records of one block of `CHUNK_SIZE` offsets together, however the
    polls cut them, each record once and in order; a block whose last offset has come leaves
    before the next poll is asked for."""
    from collections import namedtuple

    from pipeline.kafka_source import READ_SIZE, in_blocks
    from pipeline.rows import CHUNK_SIZE

    assert READ_SIZE % CHUNK_SIZE == 0  # deferred reads end on a block's end

    Record = namedtuple("Record", "offset")
    rng = random.Random(4)
    for _ in range(200):
        start = rng.randrange(3 * CHUNK_SIZE)
        offsets = [o for o in range(start, start + rng.randrange(5 * CHUNK_SIZE)) if rng.random() > 0.05]
        polls, rest = [], list(map(Record, offsets))
        while rest:
            cut = rng.randint(1, CHUNK_SIZE)
            polls.append(rest[:cut])
            rest = rest[cut:]
        blocks = list(in_blocks(polls))
        assert [r.offset for block in blocks for r in block] == offsets
        assert all(block for block in blocks)
        assert [block[0].offset // CHUNK_SIZE for block in blocks] == sorted(
            {o // CHUNK_SIZE for o in offsets}
        )
        assert all(len({r.offset // CHUNK_SIZE for r in block}) == 1 for block in blocks)

    asked = []

    def polls():
        for first in (0, CHUNK_SIZE):
            asked.append(first)
            yield [Record(o) for o in range(first, first + CHUNK_SIZE)]

    blocks = in_blocks(polls())
    assert [r.offset for r in next(blocks)] == list(range(CHUNK_SIZE)) and asked == [0]


def test_a_bounded_read_enters_as_pieces_that_end_on_whole_blocks():
    """Few partitions still spread over a runner's workers: each range is cut into pieces of at
    most SPLIT_SIZE offsets, every offset in exactly one piece, in order, each piece ending on a
    multiple of its size (a block's end) or on its range's stop."""
    from pipeline.kafka_source import READ_SIZE, SPLIT_SIZE, split_ranges

    rng = random.Random(4)
    for size in (SPLIT_SIZE, READ_SIZE):
        for _ in range(200):
            starts = [rng.randint(0, 10**6) for _ in range(rng.randint(1, 4))]
            ranges = [
                OffsetRange("t", p, start, start + rng.choice([0, 1, size, rng.randint(0, 10 * size)]))
                for p, start in enumerate(starts)
            ]
            pieces = list(split_ranges(ranges, size))
            for r in ranges:
                mine = [p for p in pieces if p.partition == r.partition]
                offsets = [o for p in mine for o in range(p.start, p.stop)]
                assert offsets == list(range(r.start, r.stop))
                assert all(0 < p.size <= size and (p.stop % size == 0 or p.stop == r.stop) for p in mine)
    assert len(list(split_ranges([OffsetRange("t", 0, 0, 25 * SPLIT_SIZE)], SPLIT_SIZE))) == 25


def test_the_session_cluster_plans_larger_batches_than_one_machine():
    from dataclasses import replace

    from pipeline.runners import records_per_batch
    from wirestream.config import Config

    config = replace(Config(), max_records_per_batch=1_000, flink_records_per_batch=7_000)
    assert [records_per_batch(config, r) for r in ("direct", "prism", "flink", "flink-cluster")] == [
        1_000,
        1_000,
        1_000,
        7_000,
    ]
    assert records_per_batch(replace(config, flink_records_per_batch=None), "flink-cluster") is None

from datetime import UTC, datetime, timedelta

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.util import assert_that, equal_to

from pipeline import minhash
from pipeline.dedup import (
    DEFAULT_THRESHOLD,
    CommittedIndex,
    LoadCommitted,
    cluster_stories,
    first_deliveries,
    published_us,
    sign_rows,
    summarise,
    summarise_chunk,
    windows_around,
)
from pipeline.rows import Packed
from pipeline.transforms import DeduplicateStories
from pipeline.write import pack_files, partition_of, shard_of
from schemas import CLEAN_SCHEMA
from tests.conftest import chunks

WIRE = (
    "Russia said on Saturday it was suspending its participation in the grain deal that allowed "
    "Ukrainian grain exports through the Black Sea, citing a drone attack on its fleet in Sevastopol. "
    "The United Nations said it was in contact with Moscow. Wheat futures jumped on the news as "
    "traders feared the corridor could close, and shipping companies paused new charters."
)
EDITED = WIRE.replace("on Saturday", "on Oct. 29").replace("Wheat futures", "Chicago wheat futures")
OTHER = (
    "Moscow pulled out of the Black Sea export arrangement after explosions hit warships near Crimea, "
    "officials in Kyiv and Ankara said, while the United Nations urged all sides to keep ships moving."
)
WEEK = timedelta(days=7)

# One agency story (five paragraphs), as sites republish it, and an independent report of the same
# exchange quoting the same statement word for word.
STATEMENT = (
    '"Today our people are coming home. Soldiers of the armed forces, the national guard and the border '
    "service, and civilians. Most of them have been in captivity since 2022. We thank the United Arab "
    'Emirates for their help in bringing them back,"'
)
STORY = (
    "KYIV, Ukraine (AP) - Ukraine and Russia exchanged 146 prisoners of war each on Sunday, the first "
    "swap in weeks, officials on both sides said, as fighting raged along the front line in the east.\n\n"
    f"{STATEMENT} President Volodymyr Zelenskyy wrote on social media after the swap.\n\n"
    "Russia's Defense Ministry said the Russian servicemen were in Belarus and would be brought to "
    "Moscow for medical treatment and rehabilitation after their release.\n\n"
    "The United Arab Emirates, which has mediated several earlier exchanges between the two countries, "
    "said the swap brought the number of prisoners released with its help to more than 4,600.\n\n"
    "The exchange came days after talks on ending the war stalled over territory, with both sides "
    "accusing each other of delaying a ceasefire that Washington has pressed them to accept."
)
LEAD_ONLY = STORY.split("\n\n")[0]
EXTENDED = (
    "The Kyiv Independent - Our morning briefing brings you the news from Ukraine before breakfast.\n\n"
    + STORY
    + "\n\nUkraine's ombudsman said more exchanges were being prepared and that families of missing "
    "soldiers should contact the coordination headquarters for prisoners of war to give their details."
)
INDEPENDENT = (
    "Ukraine brought home 146 of its defenders from Russian captivity on Sunday in a new exchange "
    "mediated by Abu Dhabi, the coordination headquarters for prisoners of war reported.\n\n"
    f"{STATEMENT} the head of state wrote in his evening address, thanking the partners.\n\n"
    "Among those freed are fighters who defended Mariupol and the Azovstal plant, as well as two "
    "civilians detained in the Kherson region in the first months of the full-scale invasion."
)


def row(story_id, body=WIRE, minute=0, offset=0, day=29, partition=0):
    return {
        "id": story_id,
        "body": body,
        "kafka_partition": partition,
        "kafka_offset": offset,
        "kafka_timestamp": datetime(2022, 10, day, 12, minute, tzinfo=UTC),
        "firstcreated": datetime(2022, 10, day, 10, minute, tzinfo=UTC),
        "fetched_at": datetime(2022, 10, day, 12, minute, tzinfo=UTC),
    }


def verdicts(rows, committed=None, threshold=DEFAULT_THRESHOLD):
    return cluster_stories(
        [summarise(r) for r in sign_rows(rows)], committed or CommittedIndex(), threshold, WEEK
    )


def test_first_delivery_wins():
    deliveries = [summarise(row("a", offset=9, minute=5)), summarise(row("a", offset=3, minute=1))]
    (first,) = first_deliveries(deliveries)
    assert first[0][3] == 3  # order key: (seen, Kafka time, partition, offset, id)


def test_light_edits_are_flagged_against_the_first_seen_copy_and_kept():
    out = verdicts([row("b", EDITED, minute=7), row("a", WIRE, minute=2), row("c", OTHER, minute=9)])
    assert out["a"].keep and out["a"].duplicate_of is None and out["a"].cluster_id == "a"
    assert (out["b"].duplicate_of, out["b"].cluster_id) == ("a", "a")
    assert (out["c"].duplicate_of, out["c"].cluster_id) == (None, "c")  # same event, other words


def test_trimmed_and_extended_copies_cluster_with_the_full_story_and_an_independent_report_does_not():
    out = verdicts(
        [
            row("full", STORY),
            row("lead", LEAD_ONLY, minute=1),
            row("ext", EXTENDED, minute=2),
            row("other", INDEPENDENT, minute=3),
        ]
    )
    assert (
        minhash.similarity(*(sign_rows([row("x", STORY), row("y", LEAD_ONLY)])[i]["minhash"] for i in (0, 1)))
        < 0.35
    )
    assert (out["lead"].duplicate_of, out["lead"].cluster_id) == ("full", "full")
    assert (out["ext"].duplicate_of, out["ext"].cluster_id) == ("full", "full")
    assert (out["other"].duplicate_of, out["other"].cluster_id) == (None, "other")
    # Unquoted, the statement is most of the shorter report's words: left in, it links them at a
    # threshold that keeps them apart while it is quoted.
    quoted = [row("full", STORY), row("other", INDEPENDENT, minute=3)]
    unquoted = [row("full", STORY.replace('"', "")), row("other", INDEPENDENT.replace('"', ""), minute=3)]
    assert verdicts(quoted, threshold=0.35)["other"].duplicate_of is None
    assert verdicts(unquoted, threshold=0.35)["other"].duplicate_of == "full"


# Two windows of one longer agency story: one site runs its own intro and then the story's lead,
# another the lead and the rest of the story. They share the lead (~70 words, none of it quoted) and
# little else: a containment under the threshold, a shared passage far longer than the phrases and
# background sentence independent reports share.
SITE_INTRO = (
    "Our correspondent in the south reports that the port city has been without power for much of the "
    "week, and that queues for water formed outside several schools on Tuesday morning. Residents "
    "told local radio they had spent most of the night in basements and underground car parks.\n\n"
    "Farmers in the region, who depend on the port to move their harvest, say the attacks have "
    "pushed the cost of trucking grain to the Danube crossings to levels they cannot sustain, and "
    "several cooperatives have stopped buying wheat from smaller growers until the routes reopen.\n\n"
    "City officials have asked businesses near the waterfront to close early and to keep staff away "
    "from glass frontages while the air raid alert is in force."
)
GRAIN_LEAD = (
    "ODESA, Ukraine (AP) - Russian drones and missiles struck port infrastructure in Odesa for a third "
    "consecutive night, damaging grain terminals and warehouses and wounding at least a dozen people, "
    "regional officials said, days after Moscow pulled out of the agreement that had let Ukraine ship "
    "its grain across the Black Sea. The strikes destroyed about 60,000 tons of grain that had been "
    "waiting for export, the agriculture ministry said."
)
GRAIN_REST = (
    "The attacks followed Russian warnings that any ship bound for Ukrainian ports would be treated as "
    "a potential carrier of military cargo, a threat that sent insurance rates for the region soaring "
    "and left shipowners weighing whether to send vessels at all.\n\n"
    "Ukraine has said it will try to keep exporting through a temporary corridor hugging the coasts of "
    "Romania and Bulgaria, but traders doubt that many ships will use it without guarantees.\n\n"
    "Wheat and corn futures rose sharply in Chicago for a second day as markets weighed the loss of "
    "one of the world's largest suppliers, before easing later in the week."
)
GRAIN_INDEPENDENT = (
    "Three nights of bombardment have left the Black Sea city's grain terminals in ruins, Ukrainian "
    f"authorities said on Thursday. {STATEMENT} the president said in his evening video address.\n\n"
    "Since Moscow pulled out of the agreement that had let Ukraine ship its grain across the Black Sea, "
    "its forces have hit the ports again and again, according to officials in Kyiv, who accuse the "
    "Kremlin of trying to choke the country's economy and to raise world food prices.\n\n"
    "Analysts in London said insurers were already pricing voyages to the region as if they passed "
    "through an active war zone, and that few owners would risk their ships on the new route."
)


def test_different_windows_of_one_story_cluster_and_an_independent_report_sharing_a_sentence_does_not():
    intro_and_lead = f"{SITE_INTRO}\n\n{GRAIN_LEAD}"
    lead_and_rest = f"{GRAIN_LEAD}\n\n{GRAIN_REST}"
    signed = {r["id"]: r["minhash"] for r in sign_rows([row("a", intro_and_lead), row("b", lead_and_rest)])}
    # Below the threshold by the ratio alone: linked by the passage they share.
    assert minhash.containment(signed["a"], signed["b"]) < DEFAULT_THRESHOLD
    assert minhash.shared_shingles(signed["a"], signed["b"]) >= minhash.PASSAGE_SHINGLES
    out = verdicts(
        [
            row("lead-and-rest", lead_and_rest),
            row("intro-and-lead", intro_and_lead, minute=1),
            row("independent", GRAIN_INDEPENDENT, minute=2),
        ]
    )
    assert (out["intro-and-lead"].duplicate_of, out["intro-and-lead"].cluster_id) == ("lead-and-rest",) * 2
    assert (out["independent"].duplicate_of, out["independent"].cluster_id) == (None, "independent")
    # Without its shared passage the window copy is a story of its own.
    alone = verdicts([row("lead-and-rest", lead_and_rest), row("intro", SITE_INTRO, minute=1)])
    assert alone["intro"].duplicate_of is None


def test_threshold_decides_below_a_shared_passage():
    # The first sentence and its edited copy share fewer shingles than a passage: the ratio decides.
    first, edited_first = (text[: text.index("Sevastopol.")] for text in (WIRE, EDITED))
    pair = [row("a", first), row("b", edited_first, minute=1)]
    assert verdicts(pair, threshold=0.99)["b"].duplicate_of is None
    assert verdicts(pair)["b"].duplicate_of == "a"
    # The whole edited copy shares a passage of `PASSAGE_SHINGLES`: linked at any threshold.
    assert verdicts([row("a"), row("b", EDITED, minute=1)], threshold=0.99)["b"].duplicate_of == "a"


def test_clustering_is_transitive_and_order_independent():
    chain = [row("a", WIRE), row("b", EDITED, minute=1), row("c", EDITED + " Prices rose.", minute=2)]
    assert verdicts(chain) == verdicts(list(reversed(chain)))
    assert {v.cluster_id for v in verdicts(chain).values()} == {"a"}


def test_bodies_without_words_are_never_duplicates():
    out = verdicts([row("a", ""), row("b", "", minute=1)])
    assert out["a"].duplicate_of is None and out["b"].duplicate_of is None
    assert out["b"].cluster_id == "b"


def committed_with(story_id="a", body=WIRE, day=29, cluster=None, duplicate_of=None):
    index = CommittedIndex(ids={story_id})
    [signed] = sign_rows([row(story_id, body, day=day)])
    index.add(
        story_id, signed["minhash"], duplicate_of or story_id, cluster or story_id, published_us(signed)
    )
    return index


def test_committed_ids_are_dropped_and_committed_copies_are_the_canonical():
    committed = committed_with("a", cluster="k", duplicate_of="root")
    out = verdicts([row("a"), row("z", EDITED, minute=30)], committed)
    assert not out["a"].keep
    assert (out["z"].duplicate_of, out["z"].cluster_id) == ("root", "k")


def test_committed_story_wins_even_when_a_backfilled_copy_is_older():
    out = verdicts([row("old", EDITED, day=28)], committed_with("a", day=29))
    assert out["old"].duplicate_of == "a"


def test_copies_further_apart_than_the_lookback_are_not_duplicates():
    out = verdicts([row("z", EDITED, day=20)], committed_with("a", day=29))
    assert out["z"].duplicate_of is None


def write_committed(path, rows, with_signature=True):
    full = [{name: None for name in CLEAN_SCHEMA.names} | r | {"source": "s"} for r in rows]
    table = pa.Table.from_pylist(full, schema=CLEAN_SCHEMA)
    if not with_signature:
        table = table.drop_columns(["minhash"])
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return str(path)


def commit_one(tmp_path, story_id, body, day):
    """(path, row): one signed story committed in a file of its own."""
    signed = sign_rows([row(story_id, body, day=day)])[0] | {"cluster_id": story_id}
    path = tmp_path / f"data/ingest_day=2022-10-{day:02d}/b1.parquet"
    return write_committed(path, [signed]), signed


def test_load_committed_reads_signatures_inside_the_window_and_every_id(tmp_path):
    (near_file, near), (far_file, _far) = (
        commit_one(tmp_path, "a", WIRE, 29),
        commit_one(tmp_path, "f", OTHER, 1),
    )
    files = [near_file, far_file]
    start = published_us(row("x", day=27))
    index = LoadCommitted(files)([(start, start + 4 * 86_400_000_000)])
    assert index.ids == {"a", "f"}
    assert index.story_ids == ["a"] and index.signatures == [near["minhash"]]
    assert set(LoadCommitted(files)().story_ids) == {"a", "f"}
    # A batch's look-up: only those of its ids that are committed, whatever the dataset's size.
    assert LoadCommitted(files)([(start, start + 1)], ["f", "new"]).ids == {"f"}
    assert LoadCommitted(files)(None, []).ids == set()


def test_committed_signatures_are_rows_of_their_files_inside_the_window(tmp_path):
    signed = sign_rows([row("a", WIRE, day=29), row("f", OTHER, day=1), row("b", EDITED, day=28)])
    rows = [r | {"cluster_id": r["id"]} for r in signed]
    # A row whose signature is cut short sits between them: it takes no part, and shifts nothing.
    broken = rows[0] | {"id": "x", "minhash": rows[0]["minhash"][:100], "cluster_id": "x"}
    path = write_committed(tmp_path / "b1.parquet", [rows[0], broken, *rows[1:]])
    other = commit_one(tmp_path, "c", OTHER, 30)
    start = published_us(row("x", day=27))
    index = LoadCommitted([path, other[0]])([(start, start + 4 * 86_400_000_000)])
    assert index.story_ids == ["a", "b", "c"]
    out = np.zeros((3, minhash.COLUMNS), np.uint16)
    index.copy_signatures(out)
    expected = [rows[0]["minhash"], rows[2]["minhash"], other[1]["minhash"]]
    assert [r.tobytes() for r in out] == expected == index.signatures


def test_windows_cover_each_story_not_the_span_between_them():
    day = 86_400_000_000
    # A batch holding the end of one Kafka partition (day 200) and the start of the next (day 0).
    assert windows_around([200 * day, 0, day, 200 * day + 5], 7 * day) == [
        (-7 * day, 8 * day),
        (193 * day, 207 * day + 5),
    ]
    assert windows_around([], day) == []
    # Past `most` windows, the closest neighbours merge: a superset, never a gap.
    spread = windows_around([i * 100 * day for i in range(10)], day, most=3)
    assert len(spread) == 3 and spread[0][0] == -day and spread[-1][1] == 901 * day
    assert all(any(a <= i * 100 * day <= b for a, b in spread) for i in range(10))


def test_load_committed_skips_partitions_between_windows(tmp_path):
    files = [commit_one(tmp_path, "e", WIRE, 1)[0], commit_one(tmp_path, "m", OTHER, 15)[0]]
    day = 86_400_000_000
    times = [published_us(row("x", day=2)), published_us(row("y", day=29))]
    index = LoadCommitted(files)(windows_around(times, 3 * day), ["x", "y"])
    assert index.story_ids == ["e"]  # day 15 lies between the two windows


def test_rows_committed_before_signatures_existed_are_signed_from_their_body(tmp_path):
    path = write_committed(tmp_path / "old.parquet", [row("a") | {"cluster_id": "a"}], with_signature=False)
    index = LoadCommitted([path])()
    assert index.signatures == [sign_rows([row("a")])[0]["minhash"]]


def test_signatures_committed_before_they_kept_their_count_still_match(tmp_path):
    signed = sign_rows([row("a", WIRE, day=29), row("s", STORY, day=29)])
    legacy = [
        r | {"minhash": r["minhash"][: minhash.LEGACY_SIGNATURE_BYTES], "cluster_id": r["id"]} for r in signed
    ]
    path = write_committed(tmp_path / "old.parquet", legacy)
    index = LoadCommitted([path])()
    assert index.story_ids == ["a", "s"]
    # Matched by Jaccard similarity, a lower bound of containment: light edits and a short
    # extension, not a lead-only copy (Jaccard ~0.2) on its own; with the extended copy in its
    # batch (containment, both signatures fresh), the lead joins the group through it.
    out = verdicts([row("z", EDITED, minute=30), row("n", LEAD_ONLY, minute=32)], index)
    assert (out["z"].duplicate_of, out["z"].cluster_id) == ("a", "a")
    assert (out["n"].duplicate_of, out["n"].cluster_id) == (None, "n")
    out = verdicts([row("e", EXTENDED, minute=31), row("n", LEAD_ONLY, minute=32)], index)
    assert (out["e"].duplicate_of, out["e"].cluster_id) == ("s", "s")
    assert (out["n"].duplicate_of, out["n"].cluster_id) == ("s", "s")
    # A batch arriving with a legacy signature takes part too.
    [fresh] = sign_rows([row("y", EDITED, minute=40)])
    old_style = summarise(fresh | {"minhash": fresh["minhash"][: minhash.LEGACY_SIGNATURE_BYTES]})
    assert cluster_stories([old_style], index, DEFAULT_THRESHOLD, WEEK)["y"].duplicate_of == "a"


def test_constructor_validates():
    with pytest.raises(ValueError, match="callable"):
        DeduplicateStories(None)
    with pytest.raises(ValueError, match="threshold"):
        DeduplicateStories(LoadCommitted([]), threshold=0)
    with pytest.raises(ValueError, match="lookback"):
        DeduplicateStories(LoadCommitted([]), lookback=timedelta(0))


def test_transform_drops_redeliveries_and_flags_copies_by_file(tmp_path):
    committed = write_committed(tmp_path / "c.parquet", sign_rows([row("old", OTHER)]))
    rows = [row("a", WIRE, offset=1), row("a", WIRE, offset=5), row("b", EDITED, minute=3), row("old", OTHER)]
    # the copies in different chunks
    packed = [
        Packed(summarise_chunk(c), pack_files(c, 2, tmp_path / "spill")) for c in chunks(sign_rows(rows), 2)
    ]
    with beam.Pipeline() as p:
        out = (
            p
            | beam.Create(packed)
            | DeduplicateStories(LoadCommitted([committed]))
            | beam.FlatMapTuple(
                lambda route, kept: [
                    (route, r["id"], r["kafka_offset"], r["duplicate_of"], r["cluster_id"], len(r["minhash"]))
                    for r in kept.to_pylist()
                ]
            )
        )
        # re-delivery and committed "old" dropped, the copy flagged, each row keyed by its file
        a, b = (f"{partition_of(row('a', WIRE))}/{shard_of(s, 2):03d}" for s in ("a", "b"))
        size = minhash.SIGNATURE_BYTES
        assert_that(out, equal_to([(a, "a", 1, None, "a", size), (b, "b", 0, "a", "a", size)]))


def test_signed_rows_kept_in_memory_are_those_of_the_latest_window(tmp_path):
    from pipeline import dedup

    recent, old = commit_one(tmp_path, "a", WIRE, 29)[0], commit_one(tmp_path, "f", OTHER, 1)[0]
    LoadCommitted([recent, old])()  # no window: both files
    assert {key[0] for key in dedup._SIGNED._tables} == {recent, old}
    start = published_us(row("x", day=27))
    LoadCommitted([recent, old])([(start, start + 4 * 86_400_000_000)], ["x"])
    assert {key[0] for key in dedup._SIGNED._tables} == {recent}


def test_verdicts_on_an_arrow_table_keep_drop_and_flag_as_on_rows():
    """The vector form of the rule (`apply_verdicts_to_table`) against the row form, on random
    verdicts: dropped stories, kept ones, later deliveries, stories without a verdict, and rows
    whose Kafka partition or offset is missing (counted as 0)."""
    import random

    from pipeline.dedup import apply_verdicts, apply_verdicts_to_table, verdict_columns
    from pipeline.write import sorted_table

    rng = random.Random(11)
    rows, verdicts = [], {}
    for _ in range(400):
        story = f"s{rng.randrange(150)}"
        partition = rng.choice([0, 1, 2, None])
        offset = rng.choice([None, rng.randrange(6)])
        rows.append(dict(row(story, offset=0), kafka_partition=partition, kafka_offset=offset))
        if story not in verdicts and rng.random() < 0.9:
            canonical = rng.choice([None, f"s{rng.randrange(150)}"])
            # mostly the delivery read first (this one), else another
            first = (
                (partition or 0, offset or 0) if rng.random() < 0.8 else (rng.randrange(3), rng.randrange(6))
            )
            verdicts[story] = (rng.random() < 0.8, canonical, canonical or story, *first)
    table = pa.Table.from_pylist(rows, schema=CLEAN_SCHEMA)
    expected = apply_verdicts(rows, verdicts)
    got = apply_verdicts_to_table(table, verdict_columns(verdicts))
    assert 20 < len(expected) < 300
    columns = ("id", "kafka_partition", "kafka_offset", "duplicate_of", "cluster_id")
    # the kept rows, in the order their file holds them (the writer copies nothing more)
    in_file_order = sorted_table(pa.Table.from_pylist(expected, schema=CLEAN_SCHEMA))
    assert got.select(list(columns)).to_pylist() == in_file_order.select(list(columns)).to_pylist()

    def body_bytes(table):
        return table.column("body").chunk(0).buffers()[2].address

    assert got.column("id").num_chunks == 1 and body_bytes(sorted_table(got)) == body_bytes(got)
    assert apply_verdicts_to_table(table, verdict_columns({})).num_rows == 0


def test_spilled_rows_all_kept_reach_the_writer_in_file_order_without_a_copy(tmp_path):
    """Streams spilled by chunks of Kafka offsets, gathered in any order, come out of
    `unpack_files` in file order; when every row is kept, applying the verdicts copies nothing, and
    the written file is the one rows in any arrival order give."""
    import random

    from pipeline.dedup import apply_verdicts_to_table, verdict_columns
    from pipeline.write import pack_files, sorted_table, unpack_files, write_table

    rng = random.Random(5)
    rows = [row(f"s{rng.randrange(10**6)}", offset=o, partition=p) for p in (0, 1) for o in range(300)]
    for r in rows:
        r["firstcreated"] = r["kafka_timestamp"]  # one date partition: one file
    paths = [path for i in range(0, 600, 50) for _route, path in pack_files(rows[i : i + 50], 1, tmp_path)]
    rng.shuffle(paths)
    table = unpack_files(paths)
    assert table.column("body").num_chunks == 12
    everything = verdict_columns(
        {r["id"]: (True, None, r["id"], r["kafka_partition"], r["kafka_offset"]) for r in rows}
    )
    got = apply_verdicts_to_table(table, everything)

    def bodies(t):
        return [chunk.buffers()[2].address for chunk in t.column("body").chunks]

    assert bodies(got) == bodies(table)  # the very buffers: nothing taken
    assert got.column("cluster_id").to_pylist() == [r["id"] for r in rows]
    write_table(tmp_path / "a.parquet", sorted_table(got))
    shuffled = apply_verdicts_to_table(
        pa.Table.from_pylist(rng.sample(rows, len(rows)), schema=CLEAN_SCHEMA), everything
    )
    write_table(tmp_path / "b.parquet", sorted_table(shuffled))
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    # a dropped row: the rest are taken, still in file order
    fewer = apply_verdicts_to_table(
        table,
        verdict_columns(
            {
                r["id"]: (r is not rows[7], None, r["id"], r["kafka_partition"], r["kafka_offset"])
                for r in rows
            }
        ),
    )
    assert fewer.column("kafka_offset").to_pylist() == [r["kafka_offset"] for r in rows if r is not rows[7]]

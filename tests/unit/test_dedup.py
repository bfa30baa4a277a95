from datetime import UTC, datetime

from pipeline.dedup import CommittedIndex, assign_clusters, first_delivery


def row(story_id, digest="h1", offset=0, minute=0, partition=0):
    return {
        "id": story_id,
        "content_hash": digest,
        "kafka_partition": partition,
        "kafka_offset": offset,
        "kafka_timestamp": datetime(2022, 7, 29, 12, minute, tzinfo=UTC),
        "firstcreated": datetime(2022, 7, 29, 10, minute, tzinfo=UTC),
    }


def test_first_delivery_wins():
    assert first_delivery([row("a", offset=9, minute=5), row("a", offset=3, minute=1)])["kafka_offset"] == 3


def test_same_text_under_other_ids_is_flagged_not_dropped():
    out = assign_clusters([row("b", minute=7), row("a", minute=2), row("c", minute=9)], CommittedIndex())
    assert [r["id"] for r in out] == ["a", "b", "c"]
    assert [r["duplicate_of"] for r in out] == [None, "a", "a"]
    assert {r["cluster_id"] for r in out} == {"a"}


def test_committed_ids_are_dropped_and_committed_text_is_the_canonical():
    committed = CommittedIndex(ids={"a"}, clusters={"h1": ("a", "a")})
    out = assign_clusters([row("a"), row("z", minute=30)], committed)
    assert [(r["id"], r["duplicate_of"], r["cluster_id"]) for r in out] == [("z", "a", "a")]


def test_everything_already_committed_gives_nothing():
    assert assign_clusters([row("a")], CommittedIndex(ids={"a"})) == []

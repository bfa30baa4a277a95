"""The demo command end to end: bundled feeds over local HTTP, real broker, Beam, the Iceberg table."""

import yaml

from tests.conftest import SAMPLES, env_for, table_rows, wirestream


def test_demo_publishes_processes_and_summarises(kafka_config, tmp_path):
    out = tmp_path / "demo"
    result = wirestream("demo", "--output", str(out), env=env_for(kafka_config))
    expected = yaml.safe_load((SAMPLES / "expected.yaml").read_text("utf-8"))
    stories = {guid: e for guid, e in expected["stories"].items() if not e.get("dead_letter")}
    assert f"published {len(stories)}, dead-lettered 1" in result.stdout
    assert f"stories written      {len(stories)}" in result.stdout
    assert "grain_deal" in result.stdout

    rows = [
        (r["uri"], r["url"], r["headline"], r["duplicate_of"], [t["topic"] for t in r["topics"] or []])
        for r in table_rows(out)
    ]
    assert len(rows) == len(stories)
    by_guid = {(r[0] or r[1]): r for r in rows}
    for guid, story in stories.items():
        row = by_guid[guid]
        assert set(row[4]) == set(story["topics"]), (guid, row[2], row[4])
        assert (row[3] is not None) == bool(story.get("duplicate_of_guid")), guid

    # A second demo finds everything already published and committed.
    again = wirestream("demo", "--output", str(out), env=env_for(kafka_config))
    assert "published 0," in again.stdout and "nothing new" in again.stdout

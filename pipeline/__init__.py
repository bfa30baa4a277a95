"""The Beam side: read Kafka ranges, parse, clean, tag, deduplicate, write Parquet, commit.

Each stage is one module of plain functions (`kafka_source`, `parse`, `clean`, `tagging`,
`prepare`, `dedup`, `write`), and `transforms` holds the composite transform of each over them:
`ReadKafkaStories`, `PrepareStories`, `DeduplicateStories` (with `GroupByFile`) and
`WriteParquetDataset`. Only `transforms`, `run`, `runners` and `accelerator` import Beam, so the
worker processes that prepare stories never do. `dataset` holds the commit protocol, `run` ties
one batch together, and `accelerator` is the single-machine accelerator behind one interface.
"""

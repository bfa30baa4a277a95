"""The Beam side: read Kafka ranges, parse, clean, tag, deduplicate, write Parquet, commit.

Each stage is one module of plain functions (`kafka_source`, `parse`, `clean`, `tagging`,
`prepare`, `dedup`, `write`), and `transforms` holds the composite transform of each over them:
`ReadKafkaStories`, `ParseRawStories`, `CleanStories`, `TagTopics`, `PrepareStories`,
`DeduplicateStories`, `GroupByFile` and `WriteParquetDataset`. Only `transforms`, `run` and
`runners` import Beam, so the worker processes that prepare stories never do. `dataset` holds the
commit protocol and `run` ties one batch together.
"""

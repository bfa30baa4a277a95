"""The Beam side: read Kafka ranges, parse, clean, deduplicate, tag, write Parquet, commit.

Each stage is one module exporting one composite transform over plain functions:
`kafka_source.ReadKafkaStories`, `parse.ParseRawStories`, `clean.CleanStories`,
`dedup.DeduplicateStories`, `tagging.TagTopics`, `write.WriteParquetDataset`; `dataset` holds
the commit protocol and `run` ties one batch together.
"""

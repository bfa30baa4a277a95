"""The Beam side: read Kafka ranges, parse, clean, tag, deduplicate, write Parquet, commit.

Each stage is one module exporting its composite transforms over plain functions:
`kafka_source.ReadKafkaStories`, `parse.ParseRawStories`, `clean.CleanStories`,
`tagging.TagTopics`, `dedup.DeduplicateStories`, `write.GroupByFile` and
`write.WriteParquetDataset`; `dataset` holds the commit protocol and `run` ties one batch together.
"""

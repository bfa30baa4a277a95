"""wirestream: wire stories from feeds and agency drops, through Kafka and Beam, into Parquet."""

__version__ = "0.1.0"

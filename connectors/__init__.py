"""Connectors turn a source into raw-story messages and publish them through one publisher."""

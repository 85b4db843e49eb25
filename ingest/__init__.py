"""The Kafka → ClickHouse consumer (`trilha ingest`): decode, batch, write, dead-letter, commit."""

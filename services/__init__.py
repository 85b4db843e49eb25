"""What is not ingest or query: the runtime every process shares, the gateway kit, the single-machine stack."""

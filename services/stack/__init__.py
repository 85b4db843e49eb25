"""The single-machine stack (`trilha up`): supervisor, embedded broker and ClickHouse, load generator
and sample records."""

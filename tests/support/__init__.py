"""What tests and benchmarks share: a PostgreSQL scratch database, recipient files, a fault proxy,
the exactly-once torture. Importing it does nothing but define things."""

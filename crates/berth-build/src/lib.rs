//! The builder: build graph, content-addressed cache keys, parallel solver, exporters.

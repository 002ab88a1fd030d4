//! Sources and sinks for every medium (registry, store, OCI layout, OCI archive, docker-archive) and the one copy pipeline.

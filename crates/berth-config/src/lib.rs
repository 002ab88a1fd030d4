//! Docker and containers configuration: config.json credentials and helpers, certs.d, insecure registries and mirrors.

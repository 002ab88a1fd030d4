//! Running containers: OCI runtime spec generation, rootfs mounts, the embedded libcontainer runtime and supervisor.

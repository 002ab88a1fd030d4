//! Per-registry concurrency limits for callers (the client itself does not limit).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One semaphore per registry host, `permits` each (Docker: 3 downloads, 5 uploads). Clone it
/// to share. Hold the permit for the whole transfer.
#[derive(Debug, Clone)]
pub struct Limiter {
    permits: usize,
    map: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl Limiter {
    pub fn new(permits: usize) -> Limiter {
        Limiter { permits: permits.max(1), map: Arc::default() }
    }

    /// Waits for a slot on `host`.
    pub async fn acquire(&self, host: &str) -> OwnedSemaphorePermit {
        let sem = {
            let mut map = match self.map.lock() {
                Ok(m) => m,
                Err(p) => p.into_inner(),
            };
            map.entry(host.to_string()).or_insert_with(|| Arc::new(Semaphore::new(self.permits))).clone()
        };
        loop {
            // The semaphore is never closed, so acquire_owned cannot fail; loop defensively.
            if let Ok(p) = sem.clone().acquire_owned().await {
                return p;
            }
        }
    }
}

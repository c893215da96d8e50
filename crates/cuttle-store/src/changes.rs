//! The change generation: how caches above the store learn that what they hold went stale.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counts committed changes. Backends bump it after each commit (and, on PostgreSQL, when
/// another node announces a commit); readers compare the value before and after.
#[derive(Debug, Default)]
pub struct ChangeCounter {
    generation: AtomicU64,
}

impl ChangeCounter {
    /// The current generation.
    pub fn current(&self) -> u64 {
        // Acquire pairs with the Release in `bump`: a reader that sees the new generation
        // also sees everything the writer did before bumping it.
        self.generation.load(Ordering::Acquire)
    }

    /// Marks that something changed.
    pub fn bump(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }
}

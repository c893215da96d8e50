//! Runs the store conformance suite against SQLite, a fresh database file per test.

use cuttle_store::Store;
use cuttle_store_sqlite::SqliteStore;

struct Harness {
    store: SqliteStore,
    _directory: tempfile::TempDir,
}

impl Harness {
    fn store(&self) -> Option<&dyn Store> {
        Some(&self.store)
    }

    async fn cleanup(self) {
        self.store.close().await;
    }
}

async fn fresh_store() -> Harness {
    let directory = tempfile::tempdir().expect("create temporary directory");
    let store = SqliteStore::open(directory.path())
        .await
        .expect("open SQLite store");
    Harness {
        store,
        _directory: directory,
    }
}

cuttle_store::store_conformance_tests!(fresh_store);

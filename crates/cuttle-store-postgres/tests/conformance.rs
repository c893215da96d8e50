//! Runs the store conformance suite against PostgreSQL, in a fresh schema per test.
//!
//! The database comes from `CUTTLE_TEST_DATABASE_URL`. Without it each test passes after a note
//! on stderr, except under `CI=true`, where a missing database fails it: CI must test PostgreSQL.

use cuttle_store::Store;
use cuttle_store_postgres::PostgresStore;
use sqlx::postgres::PgConnectOptions;

struct Harness {
    connected: Option<Connected>,
}

struct Connected {
    store: PostgresStore,
    admin: sqlx::PgPool,
    schema: String,
}

impl Harness {
    fn store(&self) -> Option<&dyn Store> {
        self.connected
            .as_ref()
            .map(|connected| &connected.store as &dyn Store)
    }

    async fn cleanup(self) {
        if let Some(connected) = self.connected {
            connected.store.close().await;
            sqlx::query(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                connected.schema
            ))
            .execute(&connected.admin)
            .await
            .expect("drop test schema");
            connected.admin.close().await;
        }
    }
}

#[expect(
    clippy::print_stderr,
    reason = "a skipped test says so where the tester looks"
)]
async fn fresh_store() -> Harness {
    let Ok(database_url) = std::env::var("CUTTLE_TEST_DATABASE_URL") else {
        assert!(
            std::env::var("CI").map_or(true, |value| value != "true"),
            "CI=true but CUTTLE_TEST_DATABASE_URL is not set: the PostgreSQL tests must run in CI"
        );
        eprintln!("note: CUTTLE_TEST_DATABASE_URL is not set; PostgreSQL conformance not run");
        return Harness { connected: None };
    };
    let options: PgConnectOptions = database_url
        .parse()
        .expect("CUTTLE_TEST_DATABASE_URL is a PostgreSQL URL");
    let admin = sqlx::PgPool::connect_with(options.clone())
        .await
        .expect("connect to CUTTLE_TEST_DATABASE_URL");
    let schema = format!("cuttle_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .expect("create test schema");
    let store = PostgresStore::connect_with(options.options([("search_path", schema.as_str())]))
        .await
        .expect("connect and migrate PostgreSQL store");
    Harness {
        connected: Some(Connected {
            store,
            admin,
            schema,
        }),
    }
}

cuttle_store::store_conformance_tests!(fresh_store);

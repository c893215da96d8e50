//! The store conformance suite: the behaviour every backend must have, as plain async functions
//! over `&dyn Store`.
//!
//! Each backend crate runs every function here against a fresh database with
//! [`crate::store_conformance_tests!`]. A failure panics with a message, as a test does.
//! Compiled only with the `conformance` feature, which the backends enable for their tests.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a failed store call fails the test where it happens"
)]

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;

use crate::{
    ApiKeyRecord, Change, Document, DocumentQuery, ResourceKind, SessionRecord, Store, StoreError,
    TaskLogLine, TaskQuery, TaskRecord, TaskState,
};

/// Generates one `#[tokio::test]` per conformance function. `$make_store` is an async function
/// returning a harness with `store(&self) -> Option<&dyn Store>` (`None` when the backend is
/// not configured here; the harness decides whether that is allowed) and `async fn cleanup(self)`.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make_store:path) => {
        $crate::store_conformance_tests!(@each $make_store;
            ids_are_allocated_in_sequence_per_kind,
            documents_round_trip,
            names_are_unique_per_kind_and_scope_ignoring_case,
            concurrent_inserts_of_one_name_leave_exactly_one,
            renaming_onto_a_taken_name_is_refused,
            lists_filter_before_paging_and_count_the_filtered_set,
            lists_order_by_sort_order_then_name,
            sql_metacharacters_are_plain_data,
            referenced_documents_cannot_be_deleted,
            broken_references_are_refused,
            deleting_an_owner_deletes_what_it_owns,
            a_space_with_contents_cannot_be_deleted,
            deleting_a_space_deletes_its_contents,
            writes_are_atomic,
            conditional_updates_refuse_a_stale_version,
            unknown_documents_are_not_found,
            settings_keep_their_first_value,
            api_keys_are_found_by_hash_and_revocable,
            sessions_round_trip,
            every_committed_change_moves_the_generation,
            tasks_are_claimed_run_and_completed_under_a_lease,
            an_expired_lease_is_resumed_and_the_old_runner_fenced_out,
            scheduled_tasks_wait_and_expire,
            cancelling_queued_and_running_tasks,
            concurrent_claims_take_different_tasks,
            tasks_list_newest_first_with_filters,
            tasks_sharing_a_concurrency_tag_run_one_at_a_time
        );
    };
    (@each $make_store:path; $($test:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let harness = $make_store().await;
                if let Some(store) = harness.store() {
                    $crate::conformance::$test(store).await;
                }
                harness.cleanup().await;
            }
        )*
    };
}

const SPACE: &str = "Spaces-1";

async fn setup_space(store: &dyn Store, id: &str) {
    store
        .write(&[Change::Insert(document(ResourceKind::Space, id, None, id))])
        .await
        .expect("insert space");
}

/// A minimal document of `kind` named `name`.
fn document(kind: ResourceKind, id: &str, space_id: Option<&str>, name: &str) -> Document {
    Document {
        id: id.to_owned(),
        kind,
        space_id: space_id.map(str::to_owned),
        owner_id: None,
        name: name.to_owned(),
        sort_order: 0,
        references: Vec::new(),
        body: json!({ "Id": id, "Name": name }),
        version: 1,
    }
}

fn environment(id: &str, name: &str) -> Document {
    document(ResourceKind::Environment, id, Some(SPACE), name)
}

async fn insert(store: &dyn Store, document: Document) {
    let id = document.id.clone();
    store
        .write(&[Change::Insert(document)])
        .await
        .unwrap_or_else(|error| panic!("insert {id}: {error}"));
}

fn all_in_space() -> DocumentQuery {
    DocumentQuery::in_space(SPACE)
}

fn ids_of(page: &crate::DocumentPage) -> Vec<&str> {
    page.documents
        .iter()
        .map(|document| document.id.as_str())
        .collect()
}

pub async fn ids_are_allocated_in_sequence_per_kind(store: &dyn Store) {
    assert_eq!(
        store.allocate_id(ResourceKind::Environment).await.unwrap(),
        "Environments-1"
    );
    assert_eq!(
        store.allocate_id(ResourceKind::Environment).await.unwrap(),
        "Environments-2"
    );
    assert_eq!(
        store.allocate_id(ResourceKind::Project).await.unwrap(),
        "Projects-1"
    );
    let concurrent =
        futures::future::join_all((0..10).map(|_| store.allocate_id(ResourceKind::Lifecycle)))
            .await;
    let mut ids: Vec<String> = concurrent.into_iter().map(Result::unwrap).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10, "concurrent allocations must not repeat");
}

pub async fn documents_round_trip(store: &dyn Store) {
    setup_space(store, SPACE).await;
    let mut stored = environment("Environments-1", "Production");
    stored.sort_order = 3;
    stored.body = json!({ "Id": "Environments-1", "Name": "Production", "Nested": {"List": [1, "two", null]} });
    insert(store, stored.clone()).await;
    let read = store
        .get_document(ResourceKind::Environment, "Environments-1")
        .await
        .unwrap()
        .expect("stored document");
    assert_eq!(read, stored);
    // The kind is part of the key: the same id under another kind is absent.
    assert_eq!(
        store
            .get_document(ResourceKind::Project, "Environments-1")
            .await
            .unwrap(),
        None
    );

    let mut updated = stored.clone();
    updated.name = "Prod".to_owned();
    updated.body = json!({ "Name": "Prod" });
    store
        .write(&[Change::Update(updated.clone())])
        .await
        .unwrap();
    let read = store
        .get_document(ResourceKind::Environment, "Environments-1")
        .await
        .unwrap();
    updated.version = 2;
    assert_eq!(read, Some(updated), "an update moves the version");
}

pub async fn names_are_unique_per_kind_and_scope_ignoring_case(store: &dyn Store) {
    setup_space(store, SPACE).await;
    setup_space(store, "Spaces-2").await;
    insert(store, environment("Environments-1", "Production")).await;

    let error = store
        .write(&[Change::Insert(environment("Environments-2", "PRODUCTION"))])
        .await
        .expect_err("a name differing only in case is taken");
    assert!(
        matches!(&error, StoreError::NameTaken { kind: ResourceKind::Environment, name } if name == "PRODUCTION"),
        "{error:?}"
    );
    // Non-ASCII names fold too.
    insert(store, environment("Environments-3", "Österreich")).await;
    assert!(matches!(
        store
            .write(&[Change::Insert(environment("Environments-4", "ÖSTERREICH"))])
            .await,
        Err(StoreError::NameTaken { .. })
    ));
    // Another kind, or another space, may use the name.
    insert(
        store,
        document(
            ResourceKind::Project,
            "Projects-1",
            Some(SPACE),
            "Production",
        ),
    )
    .await;
    insert(
        store,
        document(
            ResourceKind::Environment,
            "Environments-5",
            Some("Spaces-2"),
            "Production",
        ),
    )
    .await;
    // Owned documents are unique within their owner, not the space.
    for (channel_id, project_id) in [("Channels-1", "Projects-1"), ("Channels-2", "Projects-2")] {
        if project_id == "Projects-2" {
            insert(
                store,
                document(ResourceKind::Project, project_id, Some(SPACE), "Other"),
            )
            .await;
        }
        let mut channel = document(ResourceKind::Channel, channel_id, Some(SPACE), "Default");
        channel.owner_id = Some(project_id.to_owned());
        insert(store, channel).await;
    }
}

pub async fn concurrent_inserts_of_one_name_leave_exactly_one(store: &dyn Store) {
    setup_space(store, SPACE).await;
    let attempts = (1..=20).map(|number| async move {
        let document = environment(&format!("Environments-{number}"), "Staging");
        store.write(&[Change::Insert(document)]).await
    });
    let results = futures::future::join_all(attempts).await;
    let n_succeeded = results.iter().filter(|result| result.is_ok()).count();
    let n_taken = results
        .iter()
        .filter(|result| matches!(result, Err(StoreError::NameTaken { .. })))
        .count();
    assert_eq!(
        (n_succeeded, n_taken),
        (1, 19),
        "exactly one insert wins, the rest see NameTaken: {results:?}"
    );
    let page = store
        .list_documents(ResourceKind::Environment, &all_in_space())
        .await
        .unwrap();
    assert_eq!(page.total, 1);
}

pub async fn renaming_onto_a_taken_name_is_refused(store: &dyn Store) {
    setup_space(store, SPACE).await;
    insert(store, environment("Environments-1", "Test")).await;
    insert(store, environment("Environments-2", "Production")).await;
    let mut renamed = environment("Environments-2", "test");
    renamed.body = json!({});
    assert!(matches!(
        store.write(&[Change::Update(renamed)]).await,
        Err(StoreError::NameTaken { .. })
    ));
    // Changing only the case of one's own name is fine.
    store
        .write(&[Change::Update(environment("Environments-2", "PRODUCTION"))])
        .await
        .unwrap();
}

pub async fn lists_filter_before_paging_and_count_the_filtered_set(store: &dyn Store) {
    setup_space(store, SPACE).await;
    for (number, name) in [(1, "Web A"), (2, "Web B"), (3, "Database"), (4, "web c")] {
        insert(store, environment(&format!("Environments-{number}"), name)).await;
    }
    let page = store
        .list_documents(
            ResourceKind::Environment,
            &DocumentQuery {
                partial_name: Some("WEB".to_owned()),
                skip: 1,
                take: 1,
                ..all_in_space()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(ids_of(&page), vec!["Environments-2"]);

    let page = store
        .list_documents(
            ResourceKind::Environment,
            &DocumentQuery {
                ids: Some(vec![
                    "Environments-3".to_owned(),
                    "Environments-99".to_owned(),
                    "Environments-1".to_owned(),
                ]),
                ..all_in_space()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 2, "unknown ids are simply absent");
    assert_eq!(ids_of(&page), vec!["Environments-3", "Environments-1"]);

    let page = store
        .list_documents(
            ResourceKind::Environment,
            &DocumentQuery {
                ids: Some(Vec::new()),
                ..all_in_space()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 0);

    let page = store
        .list_documents(
            ResourceKind::Environment,
            &DocumentQuery {
                name: Some("DATABASE".to_owned()),
                ..all_in_space()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids_of(&page), vec!["Environments-3"]);

    // The largest page size clients send must not overflow.
    let page = store
        .list_documents(
            ResourceKind::Environment,
            &DocumentQuery {
                skip: i64::from(i32::MAX),
                take: i64::from(i32::MAX),
                ..all_in_space()
            },
        )
        .await
        .unwrap();
    assert_eq!((page.total, page.documents.len()), (4, 0));

    // Other spaces' documents are not listed.
    let page = store
        .list_documents(
            ResourceKind::Environment,
            &DocumentQuery::in_space("Spaces-9"),
        )
        .await
        .unwrap();
    assert_eq!(page.total, 0);
}

pub async fn lists_order_by_sort_order_then_name(store: &dyn Store) {
    setup_space(store, SPACE).await;
    for (number, name, sort_order) in [(1, "b", 2), (2, "a", 2), (3, "z", 1)] {
        let mut document = environment(&format!("Environments-{number}"), name);
        document.sort_order = sort_order;
        insert(store, document).await;
    }
    let page = store
        .list_documents(ResourceKind::Environment, &all_in_space())
        .await
        .unwrap();
    assert_eq!(
        ids_of(&page),
        vec!["Environments-3", "Environments-2", "Environments-1"]
    );
}

pub async fn sql_metacharacters_are_plain_data(store: &dyn Store) {
    setup_space(store, SPACE).await;
    let hostile_names = [
        "'; DROP TABLE documents; --",
        "100% _done_",
        "back\\slash",
        "quote\"s",
    ];
    for (index, name) in hostile_names.iter().enumerate() {
        insert(
            store,
            environment(&format!("Environments-{}", index + 1), name),
        )
        .await;
    }
    for name in hostile_names {
        let page = store
            .list_documents(
                ResourceKind::Environment,
                &DocumentQuery {
                    partial_name: Some(name.to_owned()),
                    ..all_in_space()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.total, 1, "partial name {name:?} matches itself only");
    }
    // LIKE wildcards in a filter match literally.
    for wildcard in ["%", "_"] {
        let page = store
            .list_documents(
                ResourceKind::Environment,
                &DocumentQuery {
                    partial_name: Some(wildcard.to_owned()),
                    ..all_in_space()
                },
            )
            .await
            .unwrap();
        assert_eq!(ids_of(&page), vec!["Environments-2"], "{wildcard}");
    }
    let page = store
        .list_documents(
            ResourceKind::Environment,
            &DocumentQuery {
                ids: Some(vec!["' OR '1'='1".to_owned()]),
                ..all_in_space()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 0);
}

pub async fn referenced_documents_cannot_be_deleted(store: &dyn Store) {
    setup_space(store, SPACE).await;
    insert(store, environment("Environments-1", "Production")).await;
    let mut lifecycle = document(ResourceKind::Lifecycle, "Lifecycles-1", Some(SPACE), "Main");
    lifecycle.references = vec!["Environments-1".to_owned()];
    insert(store, lifecycle.clone()).await;

    let error = store
        .write(&[Change::Delete {
            kind: ResourceKind::Environment,
            id: "Environments-1".to_owned(),
        }])
        .await
        .expect_err("in use");
    match &error {
        StoreError::InUse { used_by, .. } => {
            assert_eq!(used_by.len(), 1);
            assert_eq!(used_by[0].id, "Lifecycles-1");
            assert_eq!(used_by[0].name, "Main");
        }
        other => panic!("expected InUse, got {other:?}"),
    }
    assert!(error.to_string().contains("lifecycle 'Main'"), "{error}");
    assert_eq!(
        store.referrers("Environments-1").await.unwrap().len(),
        1,
        "the refused delete changed nothing"
    );

    // Once the reference is gone, the delete goes through.
    lifecycle.references.clear();
    store.write(&[Change::Update(lifecycle)]).await.unwrap();
    store
        .write(&[Change::Delete {
            kind: ResourceKind::Environment,
            id: "Environments-1".to_owned(),
        }])
        .await
        .unwrap();
    assert_eq!(
        store
            .get_document(ResourceKind::Environment, "Environments-1")
            .await
            .unwrap(),
        None
    );
}

pub async fn broken_references_are_refused(store: &dyn Store) {
    setup_space(store, SPACE).await;
    let mut lifecycle = document(ResourceKind::Lifecycle, "Lifecycles-1", Some(SPACE), "Main");
    lifecycle.references = vec!["Environments-404".to_owned()];
    assert!(matches!(
        store.write(&[Change::Insert(lifecycle)]).await,
        Err(StoreError::BrokenReference { .. })
    ));
    assert_eq!(
        store
            .get_document(ResourceKind::Lifecycle, "Lifecycles-1")
            .await
            .unwrap(),
        None
    );
}

pub async fn deleting_an_owner_deletes_what_it_owns(store: &dyn Store) {
    setup_space(store, SPACE).await;
    insert(
        store,
        document(ResourceKind::Lifecycle, "Lifecycles-1", Some(SPACE), "Main"),
    )
    .await;
    insert(
        store,
        document(ResourceKind::Project, "Projects-1", Some(SPACE), "Web"),
    )
    .await;
    let mut channel = document(ResourceKind::Channel, "Channels-1", Some(SPACE), "Default");
    channel.owner_id = Some("Projects-1".to_owned());
    channel.references = vec!["Projects-1".to_owned(), "Lifecycles-1".to_owned()];
    insert(store, channel).await;

    // The project's own channel does not keep the project alive.
    store
        .write(&[Change::Delete {
            kind: ResourceKind::Project,
            id: "Projects-1".to_owned(),
        }])
        .await
        .unwrap();
    assert_eq!(
        store
            .get_document(ResourceKind::Channel, "Channels-1")
            .await
            .unwrap(),
        None
    );
    // And the channel's references went with it.
    store
        .write(&[Change::Delete {
            kind: ResourceKind::Lifecycle,
            id: "Lifecycles-1".to_owned(),
        }])
        .await
        .unwrap();
}

pub async fn a_space_with_contents_cannot_be_deleted(store: &dyn Store) {
    setup_space(store, SPACE).await;
    insert(store, environment("Environments-1", "Production")).await;
    assert!(matches!(
        store
            .write(&[Change::Delete {
                kind: ResourceKind::Space,
                id: SPACE.to_owned(),
            }])
            .await,
        Err(StoreError::InUse { .. })
    ));
}

pub async fn deleting_a_space_deletes_its_contents(store: &dyn Store) {
    setup_space(store, SPACE).await;
    setup_space(store, "Spaces-2").await;
    insert(store, environment("Environments-1", "Production")).await;
    insert(
        store,
        document(
            ResourceKind::Environment,
            "Environments-2",
            Some("Spaces-2"),
            "Kept",
        ),
    )
    .await;
    let mut lifecycle = document(ResourceKind::Lifecycle, "Lifecycles-1", Some(SPACE), "Main");
    lifecycle.references = vec!["Environments-1".to_owned()];
    insert(store, lifecycle).await;
    insert(
        store,
        document(ResourceKind::Project, "Projects-1", Some(SPACE), "Web"),
    )
    .await;
    let mut channel = document(ResourceKind::Channel, "Channels-1", Some(SPACE), "Default");
    channel.owner_id = Some("Projects-1".to_owned());
    channel.references = vec!["Projects-1".to_owned(), "Lifecycles-1".to_owned()];
    insert(store, channel).await;

    store
        .write(&[Change::DeleteSpace {
            id: SPACE.to_owned(),
        }])
        .await
        .unwrap();
    for (kind, id) in [
        (ResourceKind::Space, SPACE),
        (ResourceKind::Environment, "Environments-1"),
        (ResourceKind::Lifecycle, "Lifecycles-1"),
        (ResourceKind::Channel, "Channels-1"),
    ] {
        assert_eq!(store.get_document(kind, id).await.unwrap(), None, "{id}");
    }
    assert!(
        store
            .get_document(ResourceKind::Environment, "Environments-2")
            .await
            .unwrap()
            .is_some(),
        "other spaces keep their contents"
    );
    assert!(matches!(
        store
            .write(&[Change::DeleteSpace {
                id: SPACE.to_owned()
            }])
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn conditional_updates_refuse_a_stale_version(store: &dyn Store) {
    setup_space(store, SPACE).await;
    insert(store, environment("Environments-1", "Production")).await;
    let read = store
        .get_document(ResourceKind::Environment, "Environments-1")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(read.version, 1);
    let change = |name: &str| Change::UpdateIfVersion {
        document: environment("Environments-1", name),
        expected_version: read.version,
    };
    store.write(&[change("First")]).await.unwrap();
    match store.write(&[change("Second")]).await {
        Err(StoreError::VersionConflict {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (1, 2)),
        other => panic!("expected a version conflict, got {other:?}"),
    }
    let read = store
        .get_document(ResourceKind::Environment, "Environments-1")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!((read.name.as_str(), read.version), ("First", 2));
    // Of two writers that read the same version, exactly one wins.
    let racers = ["A", "B"].map(|name| async move {
        let change = Change::UpdateIfVersion {
            document: environment("Environments-1", name),
            expected_version: 2,
        };
        store.write(&[change]).await
    });
    let results = futures::future::join_all(racers).await;
    assert_eq!(
        results.iter().filter(|result| result.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(matches!(
        store
            .write(&[Change::UpdateIfVersion {
                document: environment("Environments-9", "Nope"),
                expected_version: 1,
            }])
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn writes_are_atomic(store: &dyn Store) {
    setup_space(store, SPACE).await;
    insert(store, environment("Environments-1", "Production")).await;
    let result = store
        .write(&[
            Change::Insert(environment("Environments-2", "Staging")),
            Change::Insert(environment("Environments-3", "production")),
        ])
        .await;
    assert!(matches!(result, Err(StoreError::NameTaken { .. })));
    assert_eq!(
        store
            .get_document(ResourceKind::Environment, "Environments-2")
            .await
            .unwrap(),
        None,
        "the first insert of a failed batch is rolled back"
    );
}

pub async fn unknown_documents_are_not_found(store: &dyn Store) {
    setup_space(store, SPACE).await;
    assert!(matches!(
        store
            .write(&[Change::Update(environment("Environments-9", "Nope"))])
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store
            .write(&[Change::Delete {
                kind: ResourceKind::Environment,
                id: "Environments-9".to_owned(),
            }])
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn settings_keep_their_first_value(store: &dyn Store) {
    assert_eq!(store.get_setting("installation-id").await.unwrap(), None);
    assert_eq!(
        store
            .put_setting_if_absent("installation-id", "first")
            .await
            .unwrap(),
        "first"
    );
    assert_eq!(
        store
            .put_setting_if_absent("installation-id", "second")
            .await
            .unwrap(),
        "first"
    );
    assert_eq!(
        store
            .get_setting("installation-id")
            .await
            .unwrap()
            .as_deref(),
        Some("first")
    );
}

async fn setup_user(store: &dyn Store) {
    insert(
        store,
        document(ResourceKind::User, "Users-1", None, "admin"),
    )
    .await;
}

pub async fn api_keys_are_found_by_hash_and_revocable(store: &dyn Store) {
    setup_user(store).await;
    let created = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    let key = ApiKeyRecord {
        id: "ApiKeys-1".to_owned(),
        user_id: "Users-1".to_owned(),
        purpose: "CI".to_owned(),
        key_hash: "ab".repeat(32),
        created,
        expires: Some(created + Duration::days(30)),
    };
    store.insert_api_key(&key).await.unwrap();
    assert_eq!(
        store.find_api_key_by_hash(&"ab".repeat(32)).await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(store.find_api_key_by_hash("cd").await.unwrap(), None);
    assert_eq!(store.list_api_keys("Users-1").await.unwrap(), vec![key]);
    assert!(!store.delete_api_key("Users-2", "ApiKeys-1").await.unwrap());
    assert!(store.delete_api_key("Users-1", "ApiKeys-1").await.unwrap());
    assert_eq!(
        store.find_api_key_by_hash(&"ab".repeat(32)).await.unwrap(),
        None
    );
}

pub async fn sessions_round_trip(store: &dyn Store) {
    setup_user(store).await;
    let created = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    let session = SessionRecord {
        token_hash: "ef".repeat(32),
        user_id: "Users-1".to_owned(),
        csrf_token: "csrf".to_owned(),
        created,
        expires: created + Duration::hours(12),
    };
    store.insert_session(&session).await.unwrap();
    assert_eq!(
        store.find_session(&"ef".repeat(32)).await.unwrap(),
        Some(session.clone())
    );
    store.delete_session(&"ef".repeat(32)).await.unwrap();
    assert_eq!(store.find_session(&"ef".repeat(32)).await.unwrap(), None);

    // A password change ends the user's other sessions and keeps the one that made it.
    for hash in ["a1", "a2", "a3"] {
        store
            .insert_session(&SessionRecord {
                token_hash: hash.repeat(32),
                ..session.clone()
            })
            .await
            .unwrap();
    }
    store
        .delete_user_sessions("Users-1", Some(&"a2".repeat(32)))
        .await
        .unwrap();
    assert_eq!(store.find_session(&"a1".repeat(32)).await.unwrap(), None);
    assert!(
        store
            .find_session(&"a2".repeat(32))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.find_session(&"a3".repeat(32)).await.unwrap(), None);
    store.delete_user_sessions("Users-1", None).await.unwrap();
    assert_eq!(store.find_session(&"a2".repeat(32)).await.unwrap(), None);
}

pub async fn every_committed_change_moves_the_generation(store: &dyn Store) {
    let mut last = store.change_generation();
    let mut assert_moved = |what: &str, store: &dyn Store| {
        let now = store.change_generation();
        assert_ne!(now, last, "{what} must move the change generation");
        last = now;
    };
    setup_space(store, SPACE).await;
    assert_moved("a write", store);
    setup_user(store).await;
    assert_moved("a user insert", store);
    let created = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    store
        .insert_api_key(&ApiKeyRecord {
            id: "ApiKeys-1".to_owned(),
            user_id: "Users-1".to_owned(),
            purpose: "CI".to_owned(),
            key_hash: "12".repeat(32),
            created,
            expires: None,
        })
        .await
        .unwrap();
    assert_moved("an API key insert", store);
    store.delete_api_key("Users-1", "ApiKeys-1").await.unwrap();
    assert_moved("an API key revocation", store);
    store
        .insert_session(&SessionRecord {
            token_hash: "34".repeat(32),
            user_id: "Users-1".to_owned(),
            csrf_token: "csrf".to_owned(),
            created,
            expires: created + Duration::hours(1),
        })
        .await
        .unwrap();
    assert_moved("a session insert", store);
    store.delete_session(&"34".repeat(32)).await.unwrap();
    assert_moved("a session delete", store);
}

fn base_time() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

fn queued_task(id: &str, queued_at: chrono::DateTime<Utc>) -> TaskRecord {
    TaskRecord::queued(
        id.to_owned(),
        Some(SPACE.to_owned()),
        "Health",
        format!("Check {id}"),
        json!({ "MachineIds": ["Machines-1"] }),
        queued_at,
    )
}

fn log_line(sequence: i64, message: &str) -> TaskLogLine {
    TaskLogLine {
        sequence,
        occurred_at: base_time(),
        category: "Info".to_owned(),
        activity_id: "task".to_owned(),
        message: message.to_owned(),
    }
}

pub async fn tasks_are_claimed_run_and_completed_under_a_lease(store: &dyn Store) {
    let now = base_time();
    store
        .insert_task(&queued_task("ServerTasks-1", now))
        .await
        .unwrap();
    let claimed = store
        .claim_task("node-a", now, now + Duration::seconds(30))
        .await
        .unwrap()
        .expect("a queued task is claimed");
    assert_eq!(claimed.task.state, TaskState::Executing);
    assert_eq!(claimed.lease.generation, 1);
    assert!(!claimed.resumed);
    assert_eq!(claimed.task.start_time, Some(now));
    assert_eq!(claimed.task.arguments["MachineIds"][0], "Machines-1");
    assert!(
        store
            .claim_task("node-b", now, now + Duration::seconds(30))
            .await
            .unwrap()
            .is_none(),
        "a task under a live lease is not claimed again"
    );

    store
        .append_task_log(
            "ServerTasks-1",
            &claimed.lease,
            &[log_line(1, "one"), log_line(2, "two")],
        )
        .await
        .unwrap();
    // Appending the same sequences again (a retry after a crash) changes nothing.
    store
        .append_task_log(
            "ServerTasks-1",
            &claimed.lease,
            &[log_line(2, "two again"), log_line(3, "three")],
        )
        .await
        .unwrap();
    assert_eq!(
        store.last_task_log_sequence("ServerTasks-1").await.unwrap(),
        3
    );
    assert_eq!(
        store
            .last_task_log_sequence("ServerTasks-404")
            .await
            .unwrap(),
        0
    );
    let lines = store.task_log("ServerTasks-1", 0, 100).await.unwrap();
    let messages: Vec<&str> = lines.iter().map(|line| line.message.as_str()).collect();
    assert_eq!(messages, ["one", "two", "three"]);
    assert_eq!(
        store.task_log("ServerTasks-1", 2, 100).await.unwrap().len(),
        1
    );
    // A large batch (several statements' worth) lands whole and in order.
    let many: Vec<TaskLogLine> = (4..=12_003)
        .map(|sequence| log_line(sequence, &format!("line {sequence}")))
        .collect();
    store
        .append_task_log("ServerTasks-1", &claimed.lease, &many)
        .await
        .unwrap();
    assert_eq!(
        store.last_task_log_sequence("ServerTasks-1").await.unwrap(),
        12_003
    );
    let tail = store.task_log("ServerTasks-1", 11_990, 100).await.unwrap();
    assert_eq!(tail.len(), 13);
    assert_eq!(tail[12].message, "line 12003");

    let mut task = claimed.task.clone();
    task.progress = json!({ "Step": 1 });
    task.has_warnings_or_errors = true;
    store.save_task(&task, &claimed.lease).await.unwrap();
    store
        .renew_task_lease("ServerTasks-1", &claimed.lease, now + Duration::seconds(60))
        .await
        .unwrap();
    task.state = TaskState::Success;
    task.completed_time = Some(now + Duration::seconds(5));
    store.save_task(&task, &claimed.lease).await.unwrap();
    let stored = store
        .get_task("ServerTasks-1")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(stored.state, TaskState::Success);
    assert_eq!(stored.progress, json!({ "Step": 1 }));
    assert!(stored.has_warnings_or_errors);
    assert_eq!(stored.claimed_by, None, "a completed task is released");
    assert!(
        store
            .claim_task("node-b", now + Duration::hours(1), now + Duration::hours(2))
            .await
            .unwrap()
            .is_none(),
        "a completed task is never claimed"
    );
}

pub async fn an_expired_lease_is_resumed_and_the_old_runner_fenced_out(store: &dyn Store) {
    let now = base_time();
    store
        .insert_task(&queued_task("ServerTasks-1", now))
        .await
        .unwrap();
    let first = store
        .claim_task("node-a", now, now + Duration::seconds(10))
        .await
        .unwrap()
        .expect("claimed");
    store
        .append_task_log(
            "ServerTasks-1",
            &first.lease,
            &[log_line(1, "before the crash")],
        )
        .await
        .unwrap();
    let later = now + Duration::seconds(11);
    let second = store
        .claim_task("node-b", later, later + Duration::seconds(10))
        .await
        .unwrap()
        .expect("an expired lease is claimed again");
    assert!(second.resumed);
    assert_eq!(second.lease.generation, 2);
    assert_eq!(second.task.start_time, Some(now), "the start time is kept");
    assert_eq!(second.task.state, TaskState::Executing);

    let mut stale = first.task.clone();
    stale.state = TaskState::Failed;
    assert!(matches!(
        store.save_task(&stale, &first.lease).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        store
            .append_task_log("ServerTasks-1", &first.lease, &[log_line(2, "stale")])
            .await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        store
            .renew_task_lease("ServerTasks-1", &first.lease, later)
            .await,
        Err(StoreError::LeaseLost { .. })
    ));
    store
        .append_task_log(
            "ServerTasks-1",
            &second.lease,
            &[log_line(2, "after the resume")],
        )
        .await
        .unwrap();
    assert_eq!(
        store.task_log("ServerTasks-1", 0, 10).await.unwrap().len(),
        2
    );

    // Lines and progress are written together, or (under a lost lease) neither.
    let mut progressed = second.task.clone();
    progressed.progress = serde_json::json!({"AfterSequence": 3});
    assert!(matches!(
        store
            .save_task_with_log(&progressed, &first.lease, &[log_line(3, "stale")])
            .await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert_eq!(
        store.task_log("ServerTasks-1", 0, 10).await.unwrap().len(),
        2,
        "a refused save writes no lines"
    );
    store
        .save_task_with_log(&progressed, &second.lease, &[log_line(3, "copied")])
        .await
        .unwrap();
    let lines = store.task_log("ServerTasks-1", 0, 10).await.unwrap();
    assert_eq!(
        lines.last().map(|line| line.message.as_str()),
        Some("copied")
    );
    let stored = store
        .get_task("ServerTasks-1")
        .await
        .unwrap()
        .expect("the task");
    assert_eq!(stored.progress, serde_json::json!({"AfterSequence": 3}));
}

pub async fn scheduled_tasks_wait_and_expire(store: &dyn Store) {
    let now = base_time();
    let mut scheduled = queued_task("ServerTasks-1", now + Duration::minutes(10));
    scheduled.queue_time_expiry = Some(now + Duration::minutes(20));
    store.insert_task(&scheduled).await.unwrap();
    assert!(
        store
            .claim_task("node-a", now, now + Duration::seconds(30))
            .await
            .unwrap()
            .is_none()
    );
    let late = now + Duration::minutes(21);
    assert!(
        store
            .claim_task("node-a", late, late + Duration::seconds(30))
            .await
            .unwrap()
            .is_none()
    );
    let stored = store
        .get_task("ServerTasks-1")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(stored.state, TaskState::TimedOut);
    assert!(stored.completed_time.is_some());
}

pub async fn cancelling_queued_and_running_tasks(store: &dyn Store) {
    let now = base_time();
    store
        .insert_task(&queued_task("ServerTasks-1", now))
        .await
        .unwrap();
    store
        .insert_task(&queued_task("ServerTasks-2", now + Duration::seconds(1)))
        .await
        .unwrap();
    let canceled = store
        .request_task_cancel("ServerTasks-2", now)
        .await
        .unwrap()
        .expect("known");
    assert_eq!(canceled.state, TaskState::Canceled);
    assert!(canceled.completed_time.is_some());

    let claimed = store
        .claim_task(
            "node-a",
            now + Duration::seconds(2),
            now + Duration::seconds(60),
        )
        .await
        .unwrap()
        .expect("claimed");
    assert_eq!(claimed.task.id, "ServerTasks-1");
    let cancelling = store
        .request_task_cancel("ServerTasks-1", now)
        .await
        .unwrap()
        .expect("known");
    assert_eq!(cancelling.state, TaskState::Cancelling);
    assert!(cancelling.cancel_requested);
    // A runner saving progress does not undo the request.
    store
        .save_task(&claimed.task, &claimed.lease)
        .await
        .unwrap();
    let stored = store
        .get_task("ServerTasks-1")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(stored.state, TaskState::Cancelling);
    let renewed = store
        .renew_task_lease("ServerTasks-1", &claimed.lease, now + Duration::seconds(90))
        .await
        .unwrap();
    assert!(
        renewed.cancel_requested,
        "a runner learns of the request when it renews"
    );
    assert_eq!(
        store
            .request_task_cancel("ServerTasks-404", now)
            .await
            .unwrap(),
        None
    );
}

pub async fn concurrent_claims_take_different_tasks(store: &dyn Store) {
    let now = base_time();
    for number in 1..=6 {
        store
            .insert_task(&queued_task(
                &format!("ServerTasks-{number}"),
                now + Duration::seconds(number),
            ))
            .await
            .unwrap();
    }
    let later = now + Duration::minutes(1);
    let claims = futures::future::join_all((0..8).map(|node| async move {
        store
            .claim_task(
                &format!("node-{node}"),
                later,
                later + Duration::seconds(30),
            )
            .await
    }))
    .await;
    let mut claimed: Vec<String> = claims
        .into_iter()
        .filter_map(|claim| claim.unwrap().map(|claimed| claimed.task.id))
        .collect();
    claimed.sort();
    let expected: Vec<String> = (1..=6)
        .map(|number| format!("ServerTasks-{number}"))
        .collect();
    assert_eq!(claimed, expected, "each task claimed once");
}

pub async fn tasks_list_newest_first_with_filters(store: &dyn Store) {
    let now = base_time();
    for number in 1..=4 {
        let mut task = queued_task(
            &format!("ServerTasks-{number}"),
            now + Duration::seconds(number),
        );
        if number % 2 == 0 {
            task.name = "Deploy".to_owned();
            task.project_id = Some("Projects-1".to_owned());
        }
        store.insert_task(&task).await.unwrap();
    }
    let (total, tasks) = store.list_tasks(&TaskQuery::default()).await.unwrap();
    assert_eq!(total, 4);
    let ids: Vec<&str> = tasks.iter().map(|task| task.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "ServerTasks-4",
            "ServerTasks-3",
            "ServerTasks-2",
            "ServerTasks-1"
        ]
    );
    let (total, tasks) = store
        .list_tasks(&TaskQuery {
            ids: Some(vec!["ServerTasks-1".to_owned(), "ServerTasks-9".to_owned()]),
            ..TaskQuery::default()
        })
        .await
        .unwrap();
    assert_eq!((total, tasks.len()), (1, 1));
    let (total, _) = store
        .list_tasks(&TaskQuery {
            name: Some("Deploy".to_owned()),
            project_id: Some("Projects-1".to_owned()),
            states: Some(vec![TaskState::Queued]),
            skip: 1,
            take: 1,
            ..TaskQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(total, 2);
    let (total, _) = store
        .list_tasks(&TaskQuery {
            states: Some(vec![TaskState::Success, TaskState::Failed]),
            ..TaskQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(total, 0);
    for (number, completed_seconds) in [(5, 10), (6, 20)] {
        let mut task = queued_task(&format!("ServerTasks-{number}"), now);
        task.state = TaskState::Success;
        task.completed_time = Some(now + Duration::seconds(completed_seconds));
        store.insert_task(&task).await.unwrap();
    }
    let (total, tasks) = store
        .list_tasks(&TaskQuery {
            completed_after: Some(now + Duration::seconds(15)),
            ..TaskQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(total, 1);
    assert_eq!(tasks[0].id, "ServerTasks-6");
}

pub async fn tasks_sharing_a_concurrency_tag_run_one_at_a_time(store: &dyn Store) {
    let now = base_time();
    let tagged = |id: &str, minutes: i64, tag: &str| {
        let mut task = queued_task(id, now + Duration::minutes(minutes));
        task.concurrency_tag = Some(tag.to_owned());
        task
    };
    store
        .insert_task(&tagged("ServerTasks-1", 0, "Projects-1/Environments-1"))
        .await
        .unwrap();
    store
        .insert_task(&tagged("ServerTasks-2", 1, "Projects-1/Environments-1"))
        .await
        .unwrap();
    store
        .insert_task(&tagged("ServerTasks-3", 2, "Projects-1/Environments-2"))
        .await
        .unwrap();
    let later = now + Duration::minutes(5);
    let lease_until = later + Duration::seconds(30);
    let first = store
        .claim_task("node-a", later, lease_until)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.task.id, "ServerTasks-1");
    assert_eq!(
        first.task.concurrency_tag.as_deref(),
        Some("Projects-1/Environments-1")
    );
    // The second deployment to the same environment waits; the other environment's runs.
    let second = store
        .claim_task("node-a", later, lease_until)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        second.task.id, "ServerTasks-3",
        "the blocked task is skipped, not waited on"
    );
    assert!(
        store
            .claim_task("node-a", later, lease_until)
            .await
            .unwrap()
            .is_none()
    );
    let mut done = first.task.clone();
    done.state = TaskState::Success;
    done.completed_time = Some(later);
    store.save_task(&done, &first.lease).await.unwrap();
    let third = store
        .claim_task("node-a", later, lease_until)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        third.task.id, "ServerTasks-2",
        "runs once the first has ended"
    );
}

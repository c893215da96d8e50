//! The store's error type: one variant per case a caller answers differently.

use cuttle_domain::ResourceKind;

use crate::document::DocumentSummary;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{} named '{name}' already exists", with_article(*.kind))]
    NameTaken { kind: ResourceKind, name: String },

    #[error(
        "{kind} {id} was changed by someone else (it is at version {actual}, the change was made to version {expected}); load it again and repeat the change"
    )]
    VersionConflict {
        kind: ResourceKind,
        id: String,
        expected: i64,
        actual: i64,
    },

    #[error("task {id} is now run by another claim; this runner must stop")]
    LeaseLost { id: String },

    #[error("{kind} {id} was not found")]
    NotFound { kind: ResourceKind, id: String },

    #[error("{kind} {id} cannot be deleted because it is used by {}", describe_users(.used_by))]
    InUse {
        kind: ResourceKind,
        id: String,
        used_by: Vec<DocumentSummary>,
    },

    #[error("{kind} {id} points at a resource that does not exist")]
    BrokenReference { kind: ResourceKind, id: String },

    #[error("a stored {kind} document ({id}) could not be read: {message}")]
    Corrupt {
        kind: ResourceKind,
        id: String,
        message: String,
    },

    #[error("database error: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wraps a driver error.
    pub fn database(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Database(Box::new(error))
    }
}

/// "an environment", "a project".
fn with_article(kind: ResourceKind) -> String {
    let name = kind.human_name();
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

/// "project 'Web' (Projects-1) and lifecycle 'Default' (Lifecycles-1)", shortened past five.
fn describe_users(used_by: &[DocumentSummary]) -> String {
    const SHOWN: usize = 5;
    let mut names: Vec<String> = used_by
        .iter()
        .take(SHOWN)
        .map(|user| format!("{} '{}' ({})", user.kind, user.name, user.id))
        .collect();
    if used_by.len() > SHOWN {
        names.push(format!("{} more", used_by.len() - SHOWN));
    }
    match names.len() {
        0 => "other resources".to_owned(),
        1 => names.remove(0),
        _ => {
            let last = names.pop().unwrap_or_default();
            format!("{} and {last}", names.join(", "))
        }
    }
}

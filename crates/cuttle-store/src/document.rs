//! Documents: the rows configuration resources are stored as, and the queries over them.

use cuttle_domain::{ResourceKind, validation::name_key};

/// One stored resource: indexed columns plus the JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub id: String,
    pub kind: ResourceKind,
    /// `None` for global resources (spaces, users).
    pub space_id: Option<String>,
    /// The resource this one is deleted with; names are unique within it.
    pub owner_id: Option<String>,
    pub name: String,
    pub sort_order: i64,
    /// Ids of the documents this one points at; they cannot be deleted while it does.
    pub references: Vec<String>,
    pub body: serde_json::Value,
    /// Starts at 1 and moves on every update. Ignored on insert.
    pub version: i64,
}

impl Document {
    /// The scope within which names must be unique: the owner, else the space, else global.
    pub fn unique_scope(&self) -> &str {
        self.owner_id
            .as_deref()
            .or(self.space_id.as_deref())
            .unwrap_or("")
    }

    /// The case-folded name that uniqueness is checked on.
    pub fn name_key(&self) -> String {
        name_key(&self.name)
    }
}

/// A document's identity and name, for messages such as "used by project 'Web'".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentSummary {
    pub kind: ResourceKind,
    pub id: String,
    pub name: String,
}

/// One change in an atomic [`crate::Store::write`].
#[derive(Debug, Clone)]
pub enum Change {
    Insert(Document),
    Update(Document),
    /// Updates only if the stored version is still `expected_version` (optimistic
    /// concurrency); otherwise the write fails with [`crate::StoreError::VersionConflict`].
    UpdateIfVersion {
        document: Document,
        expected_version: i64,
    },
    Delete {
        kind: ResourceKind,
        id: String,
    },
    /// Deletes a space and every document in it (Octopus deletes a space's contents with it).
    DeleteSpace {
        id: String,
    },
}

/// Filters for [`crate::Store::list_documents`]; every filter applies before paging.
#[derive(Debug, Clone)]
pub struct DocumentQuery {
    pub space_id: Option<String>,
    pub owner_id: Option<String>,
    /// Exact ids; `Some(vec![])` matches nothing.
    pub ids: Option<Vec<String>>,
    /// Case-insensitive substring of the name.
    pub partial_name: Option<String>,
    /// Case-insensitive exact name.
    pub name: Option<String>,
    /// Only documents that reference this id.
    pub referencing: Option<String>,
    pub skip: i64,
    pub take: i64,
}

impl Default for DocumentQuery {
    fn default() -> DocumentQuery {
        DocumentQuery {
            space_id: None,
            owner_id: None,
            ids: None,
            partial_name: None,
            name: None,
            referencing: None,
            skip: 0,
            take: i64::from(i32::MAX),
        }
    }
}

impl DocumentQuery {
    /// Everything of a kind in one space.
    pub fn in_space(space_id: &str) -> DocumentQuery {
        DocumentQuery {
            space_id: Some(space_id.to_owned()),
            ..DocumentQuery::default()
        }
    }

    /// The partial-name filter folded the way names are stored.
    pub fn partial_name_key(&self) -> Option<String> {
        self.partial_name.as_deref().map(name_key)
    }

    /// The exact-name filter folded the way names are stored.
    pub fn name_key(&self) -> Option<String> {
        self.name.as_deref().map(name_key)
    }

    /// `skip` and `take` clamped to what SQL accepts.
    pub fn bounded_skip_take(&self) -> (i64, i64) {
        (self.skip.max(0), self.take.max(0))
    }
}

/// One page of documents and how many matched in all. Listed documents carry no
/// `references` (read one with `get_document` for those).
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentPage {
    pub total: i64,
    pub documents: Vec<Document>,
}

//! Credential records: API keys and browser sessions, stored hashed.

use chrono::{DateTime, Utc};

/// An API key. Only the SHA-256 of the key is kept; the key itself is shown once.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub user_id: String,
    pub purpose: String,
    pub key_hash: String,
    pub created: DateTime<Utc>,
    pub expires: Option<DateTime<Utc>>,
}

/// A signed-in browser session. Only the SHA-256 of the cookie's token is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub token_hash: String,
    pub user_id: String,
    pub csrf_token: String,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

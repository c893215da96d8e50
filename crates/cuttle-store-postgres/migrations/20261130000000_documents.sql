-- Configuration resources as documents, their references, settings and credentials.

CREATE TABLE id_sequences (
    kind TEXT PRIMARY KEY,
    last_value BIGINT NOT NULL
);

CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    space_id TEXT NULL REFERENCES documents(id),
    owner_id TEXT NULL REFERENCES documents(id) ON DELETE CASCADE,
    unique_scope TEXT NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    sort_order BIGINT NOT NULL DEFAULT 0,
    -- Moves on every update; a conditional update names the version it read.
    version BIGINT NOT NULL DEFAULT 1,
    body JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE UNIQUE INDEX documents_unique_name ON documents (kind, unique_scope, name_key);
-- "C" collation: lists order bytewise, as SQLite does, and this index serves that ORDER BY.
CREATE INDEX documents_listing ON documents (kind, space_id, sort_order, name_key COLLATE "C", id COLLATE "C");
CREATE INDEX documents_owner ON documents (owner_id);
CREATE INDEX documents_space ON documents (space_id);

-- A row per pointer from one document to another. NO ACTION (checked at the end of the
-- statement) rather than RESTRICT, so that deleting an owner cascades through its own parts.
CREATE TABLE document_references (
    from_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    to_id TEXT NOT NULL REFERENCES documents(id),
    PRIMARY KEY (from_id, to_id)
);

CREATE INDEX document_references_to ON document_references (to_id);

CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NULL
);

CREATE INDEX api_keys_user ON api_keys (user_id);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

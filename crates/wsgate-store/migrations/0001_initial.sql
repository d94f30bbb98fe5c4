-- wsgate store schema, version 1.
--
-- Written in the SQL both backends accept, so SQLite and PostgreSQL run this same file:
-- BIGINT, TEXT and BOOLEAN mean the same in both; BYTEA is PostgreSQL's binary type and, in
-- SQLite, a declared type with NUMERIC affinity, which stores blobs unchanged.
--
-- Constraint names are spelled out because the store turns a unique violation into a message
-- by constraint name (PostgreSQL reports it; see src/schema.rs for the SQLite side). Lists
-- (roles, endpoints, plans, scopes) are JSON arrays in TEXT columns: they are always read and written
-- whole with their record and never queried inside.

CREATE TABLE users (
    name          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    roles         TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (name)
);

CREATE TABLE sessions (
    token_hash TEXT   NOT NULL,
    user_name  TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT sessions_pkey PRIMARY KEY (token_hash),
    CONSTRAINT sessions_user_fkey FOREIGN KEY (user_name) REFERENCES users (name) ON DELETE CASCADE
);

CREATE TABLE apis (
    id                   TEXT    NOT NULL,
    name                 TEXT    NOT NULL,
    context              TEXT    NOT NULL,
    version              TEXT    NOT NULL,
    -- wsgate_core::version::canonical(version): `1.0` and `1.0.0` are one route.
    canonical_version    TEXT    NOT NULL,
    endpoints            TEXT    NOT NULL,
    plans                TEXT    NOT NULL,
    auth                 TEXT    NOT NULL,
    state                TEXT    NOT NULL,
    default_version      BOOLEAN NOT NULL,
    ca_file              TEXT,
    insecure_skip_verify BOOLEAN NOT NULL,
    scopes               TEXT    NOT NULL,
    close_on_token_expiry BOOLEAN NOT NULL,
    owner                TEXT    NOT NULL,
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL,
    CONSTRAINT apis_pkey PRIMARY KEY (id),
    CONSTRAINT apis_name_version_key UNIQUE (name, version),
    CONSTRAINT apis_context_version_key UNIQUE (context, canonical_version)
);

CREATE TABLE plans (
    name                TEXT   NOT NULL,
    description         TEXT   NOT NULL,
    messages_per_minute BIGINT,
    max_connections     BIGINT,
    CONSTRAINT plans_pkey PRIMARY KEY (name)
);

CREATE TABLE applications (
    id          TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    owner       TEXT   NOT NULL,
    description TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    CONSTRAINT applications_pkey PRIMARY KEY (id),
    CONSTRAINT applications_owner_name_key UNIQUE (owner, name)
);

CREATE TABLE subscriptions (
    id             TEXT   NOT NULL,
    application_id TEXT   NOT NULL,
    api_id         TEXT   NOT NULL,
    plan           TEXT   NOT NULL,
    state          TEXT   NOT NULL,
    created_at     BIGINT NOT NULL,
    CONSTRAINT subscriptions_pkey PRIMARY KEY (id),
    CONSTRAINT subscriptions_application_fkey
        FOREIGN KEY (application_id) REFERENCES applications (id) ON DELETE CASCADE,
    CONSTRAINT subscriptions_api_fkey FOREIGN KEY (api_id) REFERENCES apis (id) ON DELETE CASCADE
);

-- At most one subscription per application and API that is not REMOVED; removed ones stay as
-- history and do not block subscribing again.
CREATE UNIQUE INDEX subscriptions_live_key ON subscriptions (application_id, api_id) WHERE state <> 'REMOVED';
CREATE INDEX subscriptions_api_idx ON subscriptions (api_id);

CREATE TABLE credentials (
    application_id TEXT   NOT NULL,
    client_id      TEXT   NOT NULL,
    secret_hash    TEXT   NOT NULL,
    created_at     BIGINT NOT NULL,
    CONSTRAINT credentials_pkey PRIMARY KEY (application_id),
    CONSTRAINT credentials_client_id_key UNIQUE (client_id),
    CONSTRAINT credentials_application_fkey
        FOREIGN KEY (application_id) REFERENCES applications (id) ON DELETE CASCADE
);

CREATE TABLE signing_keys (
    kid           TEXT   NOT NULL,
    algorithm     TEXT   NOT NULL,
    private_pkcs8 BYTEA  NOT NULL,
    public_key    BYTEA  NOT NULL,
    created_at    BIGINT NOT NULL,
    active_until  BIGINT NOT NULL,
    retire_at     BIGINT NOT NULL,
    CONSTRAINT signing_keys_pkey PRIMARY KEY (kid)
);

CREATE TABLE revoked_tokens (
    jti        TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT revoked_tokens_pkey PRIMARY KEY (jti)
);
CREATE INDEX revoked_tokens_expires_idx ON revoked_tokens (expires_at);

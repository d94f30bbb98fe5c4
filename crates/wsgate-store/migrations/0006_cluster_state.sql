-- wsgate store schema, version 6: what the nodes of a cluster agree on and do once.
--
-- `settings` holds values fixed for the whole store, written once by the first node that needs
-- them (the token issuer) and read by every other node: a node never overwrites one.
-- `leases` names the node that runs a one-writer job (key pre-rotation, analytics retention)
-- until `expires_at` (Unix milliseconds); the holder renews it well before then, and when it
-- dies any node may take the lease once it has expired.

CREATE TABLE settings (
    key    TEXT   NOT NULL PRIMARY KEY,
    value  TEXT   NOT NULL,
    set_at BIGINT NOT NULL
);

CREATE TABLE leases (
    name       TEXT   NOT NULL PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);

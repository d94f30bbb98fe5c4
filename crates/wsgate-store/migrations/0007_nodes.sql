-- wsgate store schema, version 7: the node list.
--
-- Every node writes its own row when it starts and at each heartbeat (upsert by id), and a last
-- one with stopped_at when it shuts down cleanly. A row is never read by the gateway; the
-- control plane lists them, and heartbeats delete rows not seen for `[cluster] node_retention`.
-- last_seen_ms and heartbeat_ms are milliseconds: heartbeats may be shorter than a second.

CREATE TABLE nodes (
    id           TEXT   NOT NULL PRIMARY KEY,
    name         TEXT   NOT NULL,
    ws_addr      TEXT,
    wss_addr     TEXT,
    control_addr TEXT,
    version      TEXT   NOT NULL,
    started_at   BIGINT NOT NULL,
    connections  BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    heartbeat_ms BIGINT NOT NULL,
    stopped_at   BIGINT
);

CREATE INDEX nodes_last_seen ON nodes (last_seen_ms);

-- wsgate store schema, version 4: session analytics in per-minute buckets.
--
-- The analytics writer aggregates the gateway's session records in memory and adds them here
-- in batches (every column is a count that only grows, so a batch is a list of upserts that
-- add). `minute` is Unix seconds at the start of the minute; `api` is the API's store id, or
-- `config:<name>:<version>` for an API of the config file; `application` is the application
-- id, or '' for keyless connections and refusals before authentication (a primary key column
-- cannot be NULL in PostgreSQL). No client address and no token is kept.
--
-- `open_connections` counts the connections that were open at some moment of the minute (each
-- connection once per minute it lived), so the peak of a coarser slot is its largest minute.

CREATE TABLE analytics_minutes (
    minute       BIGINT NOT NULL,
    api          TEXT   NOT NULL,
    application  TEXT   NOT NULL,
    opened       BIGINT NOT NULL DEFAULT 0,
    closed       BIGINT NOT NULL DEFAULT 0,
    refused      BIGINT NOT NULL DEFAULT 0,
    open_connections BIGINT NOT NULL DEFAULT 0,
    messages_in  BIGINT NOT NULL DEFAULT 0,
    bytes_in     BIGINT NOT NULL DEFAULT 0,
    messages_out BIGINT NOT NULL DEFAULT 0,
    bytes_out    BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT analytics_minutes_pkey PRIMARY KEY (minute, api, application)
);
CREATE INDEX analytics_minutes_api ON analytics_minutes (api, minute);
CREATE INDEX analytics_minutes_application ON analytics_minutes (application, minute);

-- Refusals by HTTP status (`kind` = 'refused') and closes by close code and by the side that
-- closed (`kind` = 'close_client', 'close_upstream', 'close_gateway'; code 1006 when no close
-- frame was exchanged). Codes outside 100-599 (statuses) or 1000-4999 (close codes) are 0.
CREATE TABLE analytics_codes (
    minute      BIGINT NOT NULL,
    api         TEXT   NOT NULL,
    application TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    code        BIGINT NOT NULL,
    total       BIGINT NOT NULL,
    CONSTRAINT analytics_codes_pkey PRIMARY KEY (minute, api, application, kind, code)
);
CREATE INDEX analytics_codes_api ON analytics_codes (api, minute);
CREATE INDEX analytics_codes_application ON analytics_codes (application, minute);

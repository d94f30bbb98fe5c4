-- wsgate store schema, version 3: business plans that throttle.
--
-- A plan's limits become one column each, every one optional (NULL = unlimited). Rates are
-- TEXT in the form N/PERIOD ("50/s", "20000/min"), exactly as users write them, so the store
-- and the REST API agree without a conversion table. The per-minute message count and the
-- connection cap of version 1 carry over.
--
-- APIs may name an API-wide plan (all connections together) and a per-client plan (each client
-- address on its own); applications may name a plan for all their connections together.

ALTER TABLE plans ADD COLUMN messages TEXT;
ALTER TABLE plans ADD COLUMN bytes TEXT;
ALTER TABLE plans ADD COLUMN count_direction TEXT NOT NULL DEFAULT 'both';
ALTER TABLE plans ADD COLUMN connections BIGINT;
ALTER TABLE plans ADD COLUMN connection_rate TEXT;
ALTER TABLE plans ADD COLUMN on_exceed TEXT NOT NULL DEFAULT 'throttle';
UPDATE plans SET messages = CAST(messages_per_minute AS TEXT) || '/min' WHERE messages_per_minute IS NOT NULL;
UPDATE plans SET connections = max_connections;
ALTER TABLE plans DROP COLUMN messages_per_minute;
ALTER TABLE plans DROP COLUMN max_connections;

ALTER TABLE apis ADD COLUMN api_plan TEXT;
ALTER TABLE apis ADD COLUMN client_plan TEXT;
ALTER TABLE applications ADD COLUMN plan TEXT;

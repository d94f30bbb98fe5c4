-- wsgate store schema, version 5: upstream protection.
--
-- An API's endpoint settings (timeouts, sizes, retries, load balancing and weights, circuit
-- breaker, active probe, keepalive) are one JSON object, as the REST API and the config file
-- write them: every key optional, an absent one meaning the gateway's default.
-- The Origin allow-list is a JSON array (empty: any origin).

ALTER TABLE apis ADD COLUMN endpoint_settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE apis ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';

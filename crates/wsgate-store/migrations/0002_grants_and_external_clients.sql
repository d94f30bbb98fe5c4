-- wsgate store schema, version 2: scopes are granted, not requested; external clients are
-- registered, not guessed.
--
-- subscriptions.granted_scopes: the API scopes a publisher granted to the subscription (a JSON
-- array, like the other lists). Subscriptions made before this version were able to ask for
-- any scope, so each keeps its API's scopes: tokens already issued stay usable, and a
-- publisher can narrow the grant afterwards.
--
-- applications.external_clients: the clients of external identity providers (a JSON array of
-- {"issuer", "client_id"}) whose tokens act as the application. Before this version any
-- application's generated client id matched external tokens; now none does until registered.

ALTER TABLE subscriptions ADD COLUMN granted_scopes TEXT NOT NULL DEFAULT '[]';
UPDATE subscriptions SET granted_scopes = (SELECT apis.scopes FROM apis WHERE apis.id = subscriptions.api_id);

ALTER TABLE applications ADD COLUMN external_clients TEXT NOT NULL DEFAULT '[]';

//! The schema both backends share: the numbered migrations, the table that records which ones
//! ran, and the uniqueness rules with the names each database reports them by.
//!
//! Migrations are plain SQL files in `migrations/`, written in the dialect SQLite and
//! PostgreSQL have in common, and compiled into the binary so a node never depends on files
//! beside it. A backend applies the ones not yet recorded in `schema_migrations`, all in one
//! transaction that also holds the backend's migration lock, so two nodes starting together
//! apply each migration exactly once.

/// One step of the schema's history. Versions only grow; a released file is never edited.
#[derive(Debug)]
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// In version order. Branches developed side by side may take numbers out of order (3 may land
/// before 2); a database then applies the late one when it arrives, so each migration must
/// stand on its own.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "initial", sql: include_str!("../migrations/0001_initial.sql") },
    Migration {
        version: 2,
        name: "grants_and_external_clients",
        sql: include_str!("../migrations/0002_grants_and_external_clients.sql"),
    },
    Migration { version: 3, name: "limits", sql: include_str!("../migrations/0003_limits.sql") },
    Migration { version: 4, name: "analytics", sql: include_str!("../migrations/0004_analytics.sql") },
    Migration { version: 5, name: "endpoint_settings", sql: include_str!("../migrations/0005_endpoint_settings.sql") },
    Migration { version: 6, name: "cluster_state", sql: include_str!("../migrations/0006_cluster_state.sql") },
    Migration { version: 7, name: "nodes", sql: include_str!("../migrations/0007_nodes.sql") },
];

/// Created before anything else, inside the migration transaction.
pub(crate) const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT NOT NULL PRIMARY KEY,
    name       TEXT   NOT NULL,
    applied_at BIGINT NOT NULL
)";

pub(crate) const APPLIED: &str = "SELECT version FROM schema_migrations ORDER BY version";
pub(crate) const RECORD: &str = "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)";

/// The migrations still to run given the versions already applied; an error when the database
/// was migrated by a newer wsgate, whose schema this one must not write to.
pub(crate) fn pending(applied: &[i64]) -> Result<Vec<&'static Migration>, crate::StoreError> {
    let newest_known = MIGRATIONS.last().map_or(0, |m| m.version);
    if let Some(&newest) = applied.iter().max().filter(|&&v| v > newest_known) {
        return Err(crate::StoreError::Backend(format!(
            "the database schema is at version {newest}, newer than this wsgate knows ({newest_known}); \
             upgrade wsgate"
        )));
    }
    Ok(MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)).collect())
}

/// The seconds-since-epoch stamp recorded with an applied migration.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
}

/// A uniqueness rule of the schema that a write can break. Each write turns the rule into a
/// message naming the values involved (see `tables`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    UserName,
    SessionToken,
    ApiId,
    ApiNameVersion,
    ApiContextVersion,
    ApplicationId,
    ApplicationOwnerName,
    SubscriptionId,
    LiveSubscription,
    ClientId,
}

/// Each rule with the constraint name PostgreSQL reports and the column list SQLite reports
/// ("UNIQUE constraint failed: apis.name, apis.version"); kept beside the migrations so a new
/// constraint is named in both places at once.
const RULES: &[(Rule, &str, &str)] = &[
    (Rule::UserName, "users_pkey", "users.name"),
    (Rule::SessionToken, "sessions_pkey", "sessions.token_hash"),
    (Rule::ApiId, "apis_pkey", "apis.id"),
    (Rule::ApiNameVersion, "apis_name_version_key", "apis.name, apis.version"),
    (Rule::ApiContextVersion, "apis_context_version_key", "apis.context, apis.canonical_version"),
    (Rule::ApplicationId, "applications_pkey", "applications.id"),
    (Rule::ApplicationOwnerName, "applications_owner_name_key", "applications.owner, applications.name"),
    (Rule::SubscriptionId, "subscriptions_pkey", "subscriptions.id"),
    (Rule::LiveSubscription, "subscriptions_live_key", "subscriptions.application_id, subscriptions.api_id"),
    (Rule::ClientId, "credentials_client_id_key", "credentials.client_id"),
];

impl Rule {
    pub(crate) fn from_postgres_constraint(name: &str) -> Option<Rule> {
        RULES.iter().find(|(_, constraint, _)| *constraint == name).map(|(rule, _, _)| *rule)
    }

    /// From SQLite's message, whose text after the colon lists the index's columns.
    pub(crate) fn from_sqlite_message(message: &str) -> Option<Rule> {
        let columns = message.rsplit_once(':').map(|(_, columns)| columns.trim())?;
        RULES.iter().find(|(_, _, listed)| *listed == columns).map(|(rule, _, _)| *rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order() {
        assert_eq!(MIGRATIONS[0].version, 1);
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].version < pair[1].version, "{} comes after {}", pair[1].name, pair[0].name);
        }
    }

    #[test]
    fn every_rule_is_named_in_the_migrations() {
        let sql: String = MIGRATIONS.iter().map(|m| m.sql).collect();
        for (rule, constraint, _) in RULES {
            assert!(sql.contains(constraint), "{rule:?}: {constraint} is not in the migrations");
        }
    }

    #[test]
    fn sqlite_messages_name_their_rule() {
        let rule = Rule::from_sqlite_message("UNIQUE constraint failed: apis.context, apis.canonical_version");
        assert_eq!(rule, Some(Rule::ApiContextVersion));
        assert_eq!(Rule::from_sqlite_message("UNIQUE constraint failed: plans.name"), None);
    }

    #[test]
    fn a_newer_database_is_refused() {
        assert!(pending(&[1, 99]).is_err());
        let all: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert!(pending(&all).is_ok_and(|todo| todo.is_empty()));
        assert!(pending(&[1]).is_ok_and(|todo| todo.len() == MIGRATIONS.len() - 1));
        assert_eq!(pending(&[]).map(|todo| todo.len()).ok(), Some(MIGRATIONS.len()));
    }
}

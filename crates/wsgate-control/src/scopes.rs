//! Which scopes an application's tokens may carry: granted, never merely requested. An API
//! declares the scopes it knows (`ApiRecord::scopes`, each of which a token needs to connect);
//! a publisher grants some of them to each subscription (`Subscription::granted_scopes`); a
//! token carries what was asked for, each scope of which must be granted to one of the
//! application's ACTIVE subscriptions. Asking for more is `invalid_scope` (RFC 6749 section
//! 5.2); asking for nothing gets every granted scope (the "pre-defined default" of RFC 6749
//! section 3.3). The gateway checks the grant again when a token connects, so a scope a
//! publisher withdraws stops working for tokens already issued.

use wsgate_core::model::SubscriptionState;
use wsgate_store::{Store, StoreError, SubscriptionFilter};

/// A requested scope that is not granted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope \"{scope}\" is not granted to this application (granted: {})", if granted.is_empty() { "none".to_string() } else { granted.join(" ") })]
pub struct NotGranted {
    pub scope: String,
    pub granted: Vec<String>,
}

/// Every scope granted to the application's ACTIVE subscriptions, sorted, each once.
pub async fn granted(store: &dyn Store, application_id: &str) -> Result<Vec<String>, StoreError> {
    let filter = SubscriptionFilter { application_id: Some(application_id), api_id: None };
    let mut scopes: Vec<String> = store
        .list_subscriptions(filter)
        .await?
        .into_iter()
        .filter(|s| s.state == SubscriptionState::Active)
        .flat_map(|s| s.granted_scopes)
        .collect();
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}

/// The token's `scope`: `requested` (space-separated, already validated) if all of it is
/// granted, every granted scope when nothing was requested.
pub fn decide(requested: Option<&str>, granted: &[String]) -> Result<String, NotGranted> {
    let Some(requested) = requested.filter(|r| !r.trim().is_empty()) else { return Ok(granted.join(" ")) };
    let mut words: Vec<&str> = requested.split_whitespace().collect();
    if let Some(missing) = words.iter().find(|word| !granted.iter().any(|g| g == *word)) {
        return Err(NotGranted { scope: (*missing).to_string(), granted: granted.to_vec() });
    }
    words.dedup();
    Ok(words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_carries_what_was_asked_within_what_was_granted() {
        let granted = vec!["chat".to_string(), "read".to_string()];
        assert_eq!(decide(Some("chat"), &granted), Ok("chat".into()));
        assert_eq!(decide(None, &granted), Ok("chat read".into()));
        assert_eq!(decide(Some(""), &granted), Ok("chat read".into()));
        let refused = decide(Some("chat admin"), &granted).expect_err("admin is not granted");
        assert_eq!(refused.scope, "admin");
        assert_eq!(refused.to_string(), "scope \"admin\" is not granted to this application (granted: chat read)");
        assert_eq!(
            decide(Some("admin"), &[]).map_err(|e| e.to_string()),
            Err("scope \"admin\" is not granted to this application (granted: none)".into())
        );
        assert_eq!(decide(None, &[]), Ok(String::new()));
    }
}

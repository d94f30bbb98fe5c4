//! What the control plane manages and the gateway enforces: APIs and their lifecycle, business
//! plans, users and roles, applications, subscriptions, client credentials, signing keys and
//! revoked tokens. Plain data with serde; the rules that need no I/O live here too.

use serde::{Deserialize, Serialize};

use crate::config::{ApiSpec, AuthMode};
use crate::limits::{Limits, Period, Rate};

/// Seconds since the Unix epoch; the store keeps every time in this form.
pub type UnixTime = i64;

/// Where an API is in its life. Only `Published` and `Deprecated` APIs take connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Lifecycle {
    Created,
    Published,
    Deprecated,
    Retired,
    Blocked,
}

impl Lifecycle {
    pub const ALL: [Lifecycle; 5] =
        [Lifecycle::Created, Lifecycle::Published, Lifecycle::Deprecated, Lifecycle::Retired, Lifecycle::Blocked];

    /// The moves a publisher may make. Retired is final; Blocked is a pause that can be lifted.
    pub fn can_move_to(self, to: Lifecycle) -> bool {
        use Lifecycle::*;
        matches!(
            (self, to),
            (Created, Published)
                | (Published, Deprecated | Blocked)
                | (Deprecated, Published | Retired | Blocked)
                | (Blocked, Published | Deprecated)
        )
    }

    /// Whether the gateway accepts new connections to an API in this state.
    pub fn invokable(self) -> bool {
        matches!(self, Lifecycle::Published | Lifecycle::Deprecated)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Created => "CREATED",
            Lifecycle::Published => "PUBLISHED",
            Lifecycle::Deprecated => "DEPRECATED",
            Lifecycle::Retired => "RETIRED",
            Lifecycle::Blocked => "BLOCKED",
        }
    }

    pub fn parse(text: &str) -> Option<Lifecycle> {
        Lifecycle::ALL.into_iter().find(|state| state.as_str().eq_ignore_ascii_case(text))
    }
}

/// A WebSocket API as the control plane stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiRecord {
    /// Opaque, generated at creation, never reused.
    pub id: String,
    pub name: String,
    /// `/segment[/segment…]`, validated like the config file's `context`.
    pub context: String,
    pub version: String,
    /// `ws://` or `wss://` URLs; may be empty while CREATED, required to publish.
    pub endpoints: Vec<String>,
    /// Names of business plans subscribers may choose; at least one to publish.
    pub plans: Vec<String>,
    pub auth: AuthMode,
    pub state: Lifecycle,
    /// Whether `/context/...` without a version routes here.
    pub default_version: bool,
    /// PEM CA bundle path trusted for `wss://` endpoints instead of the system roots.
    pub ca_file: Option<String>,
    /// Accept any upstream certificate (explicit, logged).
    pub insecure_skip_verify: bool,
    /// The scopes this API knows. A token must carry all of them to open a connection, and a
    /// publisher grants them per subscription (`Subscription::granted_scopes`): a token never
    /// carries a scope its application was not granted. Empty: none required.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Whether a live connection is closed (4001 "token expired") when its token expires
    /// (true, WSO2's behaviour) or may outlive it (false).
    #[serde(default = "yes")]
    pub close_on_token_expiry: bool,
    /// A plan whose limits all connections to this API share, whoever they are (WSO2's
    /// "advanced throttling policy"): it protects the backend. `None`: no API-wide limit.
    #[serde(default)]
    pub api_plan: Option<String>,
    /// A plan whose limits apply to each client address on its own: the limits of keyless APIs,
    /// which have no subscription to count against. `None`: no per-address limit.
    #[serde(default)]
    pub client_plan: Option<String>,
    /// Origins whose pages may open connections; empty: any (see `ApiSpec::allowed_origins`).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Timeouts, sizes, balancing, breaker, probe and keepalive for its endpoints.
    #[serde(default)]
    pub endpoint_settings: crate::upstream::EndpointSettings,
    /// The user who created it.
    pub owner: String,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

fn yes() -> bool {
    true
}

impl ApiRecord {
    /// The data plane's view of this API.
    pub fn to_spec(&self) -> ApiSpec {
        ApiSpec {
            name: self.name.clone(),
            context: self.context.clone(),
            version: self.version.clone(),
            endpoints: self.endpoints.clone(),
            auth: self.auth,
            default_version: self.default_version,
            ca_file: self.ca_file.as_ref().map(Into::into),
            client_cert: None,
            client_key: None,
            insecure_skip_verify: self.insecure_skip_verify,
            allowed_origins: self.allowed_origins.clone(),
            endpoint_settings: self.endpoint_settings.clone(),
            ..ApiSpec::default()
        }
    }

    /// Every plan this API names: those it offers and its API-wide and per-client ones.
    pub fn named_plans(&self) -> impl Iterator<Item = &str> {
        self.plans.iter().map(String::as_str).chain(self.api_plan.as_deref()).chain(self.client_plan.as_deref())
    }
}

/// A business plan (throttling tier): a named set of [`Limits`]. Subscriptions choose one of
/// the plans their API offers; a plan can also serve as an application's limit, an API-wide
/// limit or a per-client limit (see [`ApiRecord::api_plan`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub name: String,
    pub description: String,
    #[serde(flatten)]
    pub limits: Limits,
}

impl Plan {
    /// The plans every new store starts with. The numbers are documented in the README; they
    /// follow WSO2's tiers in spirit: Bronze < Silver < Gold < Unlimited.
    pub fn defaults() -> Vec<Plan> {
        let plan =
            |name: &str, description: &str, messages: Option<u64>, connections: Option<u32>, rate: Option<u64>| Plan {
                name: name.into(),
                description: description.into(),
                limits: Limits {
                    messages: messages.map(|n| Rate::new(n, Period::Minute)),
                    connections,
                    connection_rate: rate.map(|n| Rate::new(n, Period::Minute)),
                    ..Limits::default()
                },
            };
        vec![
            plan("Bronze", "1,000 messages a minute, 10 connections", Some(1_000), Some(10), Some(30)),
            plan("Silver", "5,000 messages a minute, 50 connections", Some(5_000), Some(50), Some(120)),
            plan("Gold", "20,000 messages a minute, 200 connections", Some(20_000), Some(200), Some(600)),
            plan("Unlimited", "No limits", None, None, None),
        ]
    }
}

/// What a user may do. `Admin` may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    /// Creates and edits APIs.
    Creator,
    /// Moves APIs through their lifecycle.
    Publisher,
    /// Owns applications and subscribes them to APIs.
    Subscriber,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Creator, Role::Publisher, Role::Subscriber];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Creator => "creator",
            Role::Publisher => "publisher",
            Role::Subscriber => "subscriber",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str().eq_ignore_ascii_case(text))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    /// argon2 PHC string; never the password.
    pub password_hash: String,
    pub roles: Vec<Role>,
    pub created_at: UnixTime,
}

impl User {
    /// Admins hold every role.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&Role::Admin) || self.roles.contains(&role)
    }
}

/// A signed-in user's session (browser cookie or CLI bearer). Only a hash of the token is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// SHA-256 of the session token, hex.
    pub token_hash: String,
    pub user: String,
    pub expires_at: UnixTime,
}

/// An application owned by a subscriber; it holds subscriptions and client credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    pub id: String,
    /// Unique per owner.
    pub name: String,
    pub owner: String,
    pub description: String,
    /// A plan whose limits all of this application's connections share, across APIs (WSO2's
    /// application policy). `None`: only the subscriptions' plans apply.
    #[serde(default)]
    pub plan: Option<String>,
    pub created_at: UnixTime,
    /// Clients of external identity providers whose tokens act as this application. Only these
    /// map an external token to an application: the client ids wsgate generates are a separate
    /// namespace that an external provider's tokens never reach.
    #[serde(default)]
    pub external_clients: Vec<ExternalClient>,
}

/// A client registered at an external identity provider (`[[identity_providers]]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExternalClient {
    /// The provider's `iss`, exactly as configured.
    pub issuer: String,
    /// The `client_id` (or `azp`) its tokens carry.
    pub client_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SubscriptionState {
    Active,
    Blocked,
    Removed,
}

impl SubscriptionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionState::Active => "ACTIVE",
            SubscriptionState::Blocked => "BLOCKED",
            SubscriptionState::Removed => "REMOVED",
        }
    }

    pub fn parse(text: &str) -> Option<SubscriptionState> {
        [SubscriptionState::Active, SubscriptionState::Blocked, SubscriptionState::Removed]
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(text))
    }
}

/// An application's right to call an API under a plan the API offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub application_id: String,
    pub api_id: String,
    pub plan: String,
    /// ACTIVE, or BLOCKED by a publisher (only a publisher lifts it), or REMOVED.
    pub state: SubscriptionState,
    pub created_at: UnixTime,
    /// The API's scopes a publisher granted to this subscription; the application's tokens
    /// carry at most the scopes granted to its ACTIVE subscriptions.
    #[serde(default)]
    pub granted_scopes: Vec<String>,
}

/// An application's OAuth2 client credentials. One pair per application; regenerating replaces
/// it. The secret is shown once and kept only as an argon2 hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCredentials {
    pub application_id: String,
    pub client_id: String,
    pub secret_hash: String,
    pub created_at: UnixTime,
}

/// A key the key manager signs access tokens with. Old keys stay published in the JWKS until
/// the last token they signed has expired (`retire_at`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKey {
    pub kid: String,
    /// `"ES256"`.
    pub algorithm: String,
    /// PKCS#8 DER of the private key.
    pub private_pkcs8: Vec<u8>,
    /// Uncompressed public point (65 bytes for P-256), for the JWKS.
    pub public_key: Vec<u8>,
    pub created_at: UnixTime,
    /// After this time no new token is signed with it.
    pub active_until: UnixTime,
    /// After this time it leaves the JWKS.
    pub retire_at: UnixTime,
}

/// A revoked access token, kept until it would have expired anyway. An entry may also revoke
/// every token issued to one application up to a moment ([`RevokedToken::application`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedToken {
    pub jti: String,
    pub expires_at: UnixTime,
}

/// Prefix of the entries that revoke an application's tokens; token jtis never contain ':'.
const APPLICATION_PREFIX: &str = "application:";

impl RevokedToken {
    /// Revokes every token issued to `application_id` at or before `at`. It is kept for one
    /// token lifetime: after that, no token it revokes can still be valid.
    pub fn application(application_id: &str, at: UnixTime, token_ttl_secs: i64) -> RevokedToken {
        RevokedToken { jti: format!("{APPLICATION_PREFIX}{application_id}@{at}"), expires_at: at + token_ttl_secs }
    }

    /// For an application-wide entry: the application and the moment up to which its tokens
    /// are revoked.
    pub fn application_cutoff(&self) -> Option<(&str, UnixTime)> {
        let (application_id, at) = self.jti.strip_prefix(APPLICATION_PREFIX)?.rsplit_once('@')?;
        Some((application_id, at.parse().ok()?))
    }

    /// Whether this entry revokes the token with this jti, application and issue time.
    pub fn revokes(&self, jti: &str, application_id: &str, issued_at: UnixTime) -> bool {
        match self.application_cutoff() {
            Some((application, at)) => application == application_id && issued_at <= at,
            None => self.jti == jti,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_moves_follow_the_documented_graph() {
        use Lifecycle::*;
        assert!(Created.can_move_to(Published));
        assert!(Published.can_move_to(Deprecated));
        assert!(Deprecated.can_move_to(Retired));
        assert!(Published.can_move_to(Blocked) && Blocked.can_move_to(Published));
        assert!(!Created.can_move_to(Retired));
        assert!(!Retired.can_move_to(Published));
        assert!(!Published.can_move_to(Created));
        assert_eq!(Lifecycle::ALL.iter().filter(|s| s.invokable()).count(), 2);
    }

    #[test]
    fn names_round_trip() {
        for state in Lifecycle::ALL {
            assert_eq!(Lifecycle::parse(state.as_str()), Some(state));
        }
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(serde_json_like(Lifecycle::Published), "PUBLISHED");
    }

    #[test]
    fn an_application_revocation_covers_its_earlier_tokens_only() {
        let entry = RevokedToken::application("app1", 1000, 3600);
        assert_eq!(entry.expires_at, 4600);
        assert_eq!(entry.application_cutoff(), Some(("app1", 1000)));
        assert!(entry.revokes("any", "app1", 999));
        assert!(entry.revokes("any", "app1", 1000));
        assert!(!entry.revokes("any", "app1", 1001));
        assert!(!entry.revokes("any", "app2", 999));
        let single = RevokedToken { jti: "abc".into(), expires_at: 5 };
        assert!(single.revokes("abc", "app1", 0) && !single.revokes("abd", "app1", 0));
        assert_eq!(single.application_cutoff(), None);
    }

    fn serde_json_like(state: Lifecycle) -> String {
        toml::Value::try_from(state).map(|v| v.as_str().unwrap_or_default().to_string()).unwrap_or_default()
    }
}

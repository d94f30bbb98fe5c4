//! Routing: the request path names an API by context and version. The longest context wins,
//! versions are compared in canonical form (`1.0` = `1.0.0`), and whatever follows the version
//! goes to the upstream.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;
use wsgate_core::config::{ApiSpec, AuthMode, Endpoint, EndpointSettings, Scheme};
use wsgate_core::limits::Limits;
use wsgate_core::version;
use wsgate_tls::TlsError;
use wsgate_tls::client::UpstreamTlsOptions;

use crate::observe::metrics::Metrics;
use crate::upstream::health::{ApiEndpoints, EndpointTable};

/// An API whose upstream TLS settings cannot be loaded (a missing CA file, say).
#[derive(Debug, thiserror::Error)]
#[error("apis[{index}] ({name}): {source}")]
pub struct UpstreamTlsError {
    pub index: usize,
    pub name: String,
    pub source: TlsError,
}

/// One routable API with its upstream endpoints.
#[derive(Debug)]
pub struct Api {
    pub name: String,
    pub context: String,
    pub version: String,
    pub endpoints: Vec<Endpoint>,
    pub auth: AuthMode,
    /// What the control plane knows of this API; `None` for APIs from the config file.
    pub managed: Option<Managed>,
    /// How `wss://` endpoints are verified; `None` when the API has none.
    pub tls: Option<Arc<ClientConfig>>,
    /// Whether `tls` accepts any certificate; warned about once, when it appears (`follow`).
    pub insecure_skip_verify: bool,
    /// Its API-wide and per-client limits.
    pub limits: ApiLimits,
    /// Origins whose pages may connect (empty: any).
    pub allowed_origins: Vec<String>,
    /// Timeouts, sizes, balancing, breaker, probe and keepalive (each `None`: the gateway's).
    pub settings: EndpointSettings,
    /// Its entry in the gateway's endpoint table (breakers, probe verdicts, live connections,
    /// the round-robin cursor), found on first use and kept for this snapshot's life.
    upstream: OnceLock<Arc<ApiEndpoints>>,
}

/// The limits an API sets for all of its connections and for each client address, inline in the
/// config file or named plans in the store.
#[derive(Debug, Clone, Default)]
pub struct ApiLimits {
    pub api: Option<Arc<Limits>>,
    /// The plan `api` comes from, if it is one.
    pub plan: Option<String>,
    pub client: Option<Arc<Limits>>,
    pub client_plan: Option<String>,
}

/// The control plane's facts about a stored API, used by token checks.
#[derive(Debug, Clone)]
pub struct Managed {
    pub id: String,
    /// Blocked APIs stay routable so their callers learn why (403) instead of a 404.
    pub blocked: bool,
    /// Scopes a token must carry, all of them.
    pub scopes: Vec<String>,
    /// Whether a token's expiry closes its live connection (4001).
    pub close_on_token_expiry: bool,
}

impl Api {
    /// Builds a routable API, loading its upstream TLS settings when it has `wss://` endpoints.
    pub fn from_spec(spec: &ApiSpec) -> Result<Api, TlsError> {
        let endpoints = spec.parsed_endpoints();
        let tls = if endpoints.iter().any(|e| e.scheme == Scheme::Wss) {
            let options = UpstreamTlsOptions {
                ca_file: spec.ca_file.as_deref(),
                client_cert: spec.client_cert.as_deref().zip(spec.client_key.as_deref()),
                insecure_skip_verify: spec.insecure_skip_verify,
            };
            Some(wsgate_tls::client::client_config(options)?)
        } else {
            None
        };
        let tls_loaded = tls.is_some();
        Ok(Api {
            name: spec.name.clone(),
            context: spec.context.clone(),
            version: spec.version.clone(),
            endpoints,
            auth: spec.auth,
            managed: None,
            tls,
            insecure_skip_verify: spec.insecure_skip_verify && tls_loaded,
            limits: ApiLimits {
                api: spec.limits.clone().map(Arc::new),
                client: spec.client_limits.clone().map(Arc::new),
                ..ApiLimits::default()
            },
            allowed_origins: spec.allowed_origins.clone(),
            settings: spec.endpoint_settings.clone(),
            upstream: OnceLock::new(),
        })
    }

    /// What the API's own counters are named by: the store's id, or the context and canonical
    /// version of a config-file API (stable across restarts and reloads).
    pub fn counter_key(&self) -> String {
        match &self.managed {
            Some(managed) => managed.id.clone(),
            None => format!("file:{}/{}", self.context, version::canonical(&self.version)),
        }
    }

    /// This API's entry in the endpoint table, parallel to `endpoints`.
    pub fn upstream(&self, table: &EndpointTable, metrics: Option<&Metrics>) -> &Arc<ApiEndpoints> {
        self.upstream.get_or_init(|| {
            let urls: Vec<String> = self.endpoints.iter().map(ToString::to_string).collect();
            table.resolve(&self.counter_key(), &self.name, &urls, &self.settings, metrics)
        })
    }
}

/// The matched API and the path to request upstream, built from the endpoint's base path, the
/// rest of the client's path and its query.
#[derive(Debug, Clone)]
pub struct Route {
    pub api: Arc<Api>,
    /// The request target after the version segment, query included (may be empty).
    pub rest: String,
}

#[derive(Debug, Default)]
struct Context {
    versions: HashMap<String, Arc<Api>>,
    default: Option<Arc<Api>>,
}

/// All APIs by context, immutable once built.
#[derive(Debug, Default)]
pub struct RouteTable {
    contexts: HashMap<String, Context>,
}

impl RouteTable {
    /// Builds the table from specs that must all load (the config file's: a broken one stops
    /// the start).
    pub fn new(specs: &[ApiSpec]) -> Result<RouteTable, UpstreamTlsError> {
        let apis = specs
            .iter()
            .enumerate()
            .map(|(index, spec)| {
                Api::from_spec(spec).map_err(|source| UpstreamTlsError { index, name: spec.name.clone(), source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RouteTable::from_apis(apis, specs))
    }

    /// Builds the table from loaded APIs and the specs they came from (same order). A later API
    /// with the same context and version replaces an earlier one.
    pub fn from_apis(apis: Vec<Api>, specs: &[ApiSpec]) -> RouteTable {
        let mut table = RouteTable::default();
        for (api, spec) in apis.into_iter().zip(specs) {
            let api = Arc::new(api);
            let context = table.contexts.entry(spec.context.clone()).or_default();
            if spec.default_version {
                context.default = Some(api.clone());
            }
            context.versions.insert(version::canonical(&spec.version).to_string(), api);
        }
        table
    }

    /// The APIs whose upstream certificates are not verified, by [`Api::counter_key`], each
    /// with its name and version.
    pub fn unverified(&self) -> HashMap<String, (String, String)> {
        self.by_key()
            .into_iter()
            .filter(|(_, api)| api.insecure_skip_verify)
            .map(|(key, api)| (key, (api.name.clone(), api.version.clone())))
            .collect()
    }

    /// Every API in the table by [`Api::counter_key`]: the name live connections know it by.
    pub fn by_key(&self) -> HashMap<String, Arc<Api>> {
        self.contexts
            .values()
            .flat_map(|context| context.versions.values().chain(context.default.iter()))
            .map(|api| (api.counter_key(), api.clone()))
            .collect()
    }

    /// Finds the API for a request target such as `/echowebsocket/1.0.0/room?x=1`.
    pub fn resolve(&self, target: &str) -> Option<Route> {
        let (path, query) = match target.find('?') {
            Some(q) => target.split_at(q),
            None => (target, ""),
        };
        // Try every '/'-boundary prefix, longest first.
        let mut end = path.len();
        loop {
            let prefix = &path[..end];
            if let Some(context) = self.contexts.get(prefix) {
                let after = &path[end..];
                let (segment, rest) = split_first_segment(after);
                if let Some(api) = segment.and_then(|s| context.versions.get(version::canonical(s))) {
                    return Some(Route { api: api.clone(), rest: format!("{rest}{query}") });
                }
                if let Some(api) = &context.default {
                    return Some(Route { api: api.clone(), rest: format!("{after}{query}") });
                }
            }
            end = path[..end].rfind('/')?;
            if end == 0 {
                return None;
            }
        }
    }
}

/// A path that names a known context but none of its versions: what a 404 can tell the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownContext {
    pub context: String,
    /// The segment the client put where the version goes, if it looks like a version.
    pub asked: Option<String>,
    /// The versions the context has, as declared, sorted.
    pub versions: Vec<String>,
}

impl RouteTable {
    /// The context `target` names (the longest, as [`RouteTable::resolve`] matches them), for
    /// a target that did not resolve: its version is unknown and the context has no default.
    pub fn known_context(&self, target: &str) -> Option<KnownContext> {
        let path = target.split('?').next().unwrap_or_default();
        let mut end = path.len();
        loop {
            if let Some(context) = self.contexts.get(&path[..end]) {
                let (segment, _) = split_first_segment(&path[end..]);
                let mut versions: Vec<String> = context.versions.values().map(|api| api.version.clone()).collect();
                versions.sort();
                versions.dedup();
                let asked = segment.filter(|s| version::is_valid(s)).map(str::to_string);
                return Some(KnownContext { context: path[..end].to_string(), asked, versions });
            }
            end = path[..end].rfind('/')?;
            if end == 0 {
                return None;
            }
        }
    }
}

/// Splits `/a/b` into (`Some("a")`, `/b`); an empty input has no segment.
fn split_first_segment(path: &str) -> (Option<&str>, &str) {
    let Some(after_slash) = path.strip_prefix('/') else {
        return (None, path);
    };
    let cut = after_slash.find('/').unwrap_or(after_slash.len());
    (Some(&after_slash[..cut]), &after_slash[cut..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(context: &str, version: &str, default_version: bool) -> ApiSpec {
        ApiSpec {
            name: format!("{context} {version}"),
            context: context.into(),
            version: version.into(),
            endpoints: vec!["ws://127.0.0.1:1".into()],
            auth: wsgate_core::config::AuthMode::None,
            default_version,
            ..ApiSpec::default()
        }
    }

    fn table() -> RouteTable {
        RouteTable::new(&[spec("/a", "1.0", false), spec("/a/b", "2", false), spec("/d", "1", true)])
            .expect("no TLS to load")
    }

    fn hit(target: &str) -> Option<(String, String)> {
        table().resolve(target).map(|r| (r.api.name.clone(), r.rest))
    }

    #[test]
    fn versions_match_in_canonical_form() {
        assert_eq!(hit("/a/1.0"), Some(("/a 1.0".into(), "".into())));
        assert_eq!(hit("/a/1.0.0"), Some(("/a 1.0".into(), "".into())));
        assert_eq!(hit("/a/1"), Some(("/a 1.0".into(), "".into())));
    }

    #[test]
    fn longest_context_wins_and_the_rest_goes_upstream() {
        assert_eq!(hit("/a/b/2/x/y?q=1"), Some(("/a/b 2".into(), "/x/y?q=1".into())));
        assert_eq!(hit("/a/1.0/b/2"), Some(("/a 1.0".into(), "/b/2".into())));
    }

    #[test]
    fn default_version_takes_paths_without_a_version() {
        assert_eq!(hit("/d/room?x"), Some(("/d 1".into(), "/room?x".into())));
        assert_eq!(hit("/d/1.0.0/room"), Some(("/d 1".into(), "/room".into())));
    }

    #[test]
    fn a_known_context_with_an_unknown_version_names_the_versions_it_has() {
        let table = RouteTable::new(&[spec("/a", "2.0", false), spec("/a", "1.0", false), spec("/a/b", "2", false)])
            .expect("no TLS to load");
        let known = |target: &str| table.known_context(target);
        let versions = vec!["1.0".to_string(), "2.0".to_string()];
        assert_eq!(
            known("/a/9.9/x?q"),
            Some(KnownContext { context: "/a".into(), asked: Some("9.9".into()), versions: versions.clone() })
        );
        assert_eq!(known("/a"), Some(KnownContext { context: "/a".into(), asked: None, versions }));
        assert_eq!(known("/a/b/1").map(|k| k.versions), Some(vec!["2".to_string()]));
        assert_eq!(known("/a/%2e%2e").and_then(|k| k.asked), None, "only what looks like a version is repeated");
        assert_eq!(known("/ab/1.0"), None);
        assert_eq!(known("/"), None);
    }

    #[test]
    fn unknown_paths_and_versions_do_not_route() {
        assert_eq!(hit("/nothing/1.0"), None);
        assert_eq!(hit("/a/9.9"), None);
        assert_eq!(hit("/a"), None);
        assert_eq!(hit("/ab/1.0"), None);
        assert_eq!(hit("/"), None);
        assert_eq!(hit(""), None);
    }
}

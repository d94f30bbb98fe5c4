//! The client side of the command line: `wsgate api|app|subscribe|keys|token` talk to the
//! control plane's REST API over HTTPS, signed in as `--user`. Blocking on purpose: one command
//! makes a handful of requests and exits.
//!
//! - this file: the HTTPS client (trust, sign-in, requests, error messages).
//! - `commands`: one function per command; `plans`: the plan and subscription commands;
//!   `endpoints`: `api update` (endpoint settings, allowed origins) and `api endpoints`.

pub mod commands;
pub mod endpoints;
pub mod plans;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde::de::DeserializeOwned;
use serde_json::Value;
use ureq::Agent;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

use crate::cli::ClientArgs;

/// A signed-in connection to one control plane.
pub struct ControlClient {
    agent: Agent,
    base: String,
    token: String,
}

impl ControlClient {
    /// Trusts the certificate named by `--ca`, else the one the server generated in the data
    /// directory, then signs in.
    pub fn connect(args: &ClientArgs) -> anyhow::Result<ControlClient> {
        let user = args.user.as_deref().ok_or_else(|| anyhow!("no user: pass --user or set WSGATE_USER"))?;
        let password =
            args.password.as_deref().ok_or_else(|| anyhow!("no password: pass --password or set WSGATE_PASSWORD"))?;
        let ca = match &args.ca {
            Some(path) => path.clone(),
            None => {
                let data_dir = args.data_dir.clone().unwrap_or_else(wsgate_core::config::default_data_dir);
                data_dir.join("tls").join("cert.pem")
            }
        };
        let agent = agent(&ca)?;
        let base = args.server.trim_end_matches('/').to_string();
        let mut client = ControlClient { agent, base, token: String::new() };
        let login: Value = client
            .call("POST", "/api/v1/login", Some(serde_json::json!({ "username": user, "password": password })))
            .context("cannot sign in")?;
        client.token = login["token"].as_str().ok_or_else(|| anyhow!("sign-in answer has no token"))?.to_string();
        Ok(client)
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.call("GET", path, None)
    }

    pub fn post<T: DeserializeOwned>(&self, path: &str, body: Value) -> anyhow::Result<T> {
        self.call("POST", path, Some(body))
    }

    pub fn put<T: DeserializeOwned>(&self, path: &str, body: Value) -> anyhow::Result<T> {
        self.call("PUT", path, Some(body))
    }

    pub fn delete(&self, path: &str) -> anyhow::Result<()> {
        self.call::<Value>("DELETE", path, None).map(|_| ())
    }

    /// One request; a non-2xx answer becomes an error carrying the server's message.
    fn call<T: DeserializeOwned>(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<T> {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.token);
        let sent = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("Authorization", &auth).call(),
            ("DELETE", _) => self.agent.delete(&url).header("Authorization", &auth).call(),
            ("PUT", body) => self
                .agent
                .put(&url)
                .header("Authorization", &auth)
                .send_json(body.unwrap_or(Value::Object(Default::default()))),
            (_, body) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send_json(body.unwrap_or(Value::Object(Default::default()))),
        };
        let mut response = sent.map_err(|err| unreachable_server(&self.base, err))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        if !(200..300).contains(&status) {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| text.trim().to_string());
            bail!("{message} (HTTP {status})");
        }
        let text = if text.trim().is_empty() { "null" } else { &text };
        serde_json::from_str(text).with_context(|| format!("unexpected answer from {method} {path}"))
    }
}

fn agent(ca: &Path) -> anyhow::Result<Agent> {
    // ureq's rustls needs a process-wide provider; ring is the one the whole project uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pem = std::fs::read(ca).with_context(|| {
        format!("cannot read the CA certificate {} (start the server once, or pass --ca / --data-dir)", ca.display())
    })?;
    let certs = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect::<Vec<Certificate<'static>>>();
    if certs.is_empty() {
        bail!("{} holds no certificate", ca.display());
    }
    let tls =
        TlsConfig::builder().provider(TlsProvider::Rustls).root_certs(RootCerts::Specific(Arc::new(certs))).build();
    let config = Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build();
    Ok(config.into())
}

fn unreachable_server(base: &str, err: ureq::Error) -> anyhow::Error {
    anyhow!("cannot reach the control plane at {base}: {err}")
}

/// Splits `NAME:VERSION`.
pub fn name_version(text: &str) -> anyhow::Result<(&str, &str)> {
    match text.rsplit_once(':') {
        Some((name, version)) if !name.is_empty() && !version.is_empty() => Ok((name, version)),
        _ => bail!("\"{text}\" is not NAME:VERSION (e.g. EchoWebSocket:1.0)"),
    }
}

//! One function per client command. Each prints what the user asked for on stdout and nothing
//! else; errors go up to `main`, which prints one line and exits non-zero.

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};

use super::{ControlClient, name_version};
use crate::cli::{ApiCommand, AppCommand, SigningKeyCommand, SubscriptionCommand};

pub fn api(client: &ControlClient, command: ApiCommand) -> anyhow::Result<()> {
    match command {
        ApiCommand::Create {
            name,
            context,
            version,
            endpoints,
            plans,
            auth,
            scopes,
            publish,
            api_plan,
            client_plan,
        } => {
            for (flag, values) in [("--plans", &plans), ("--scopes", &scopes)] {
                if values.iter().any(|value| value.trim().is_empty()) {
                    bail!(
                        "{flag} holds an empty name: list names separated by commas, e.g. {flag} {}",
                        match flag {
                            "--plans" => "Gold,Silver (leave --plans out for Gold,Silver)",
                            _ => "chat,admin (leave --scopes out for none)",
                        }
                    );
                }
            }
            let body = json!({
                "name": name, "context": context, "version": version, "endpoints": endpoints,
                "plans": plans, "auth": auth, "scopes": scopes, "publish": publish,
                "api_plan": api_plan, "client_plan": client_plan,
            });
            let api: Value = client.post("/api/v1/apis", body)?;
            println!(
                "{} {} {} ({})",
                str_of(&api, "name"),
                str_of(&api, "version"),
                str_of(&api, "state"),
                str_of(&api, "id")
            );
        }
        ApiCommand::List => {
            let apis: Vec<Value> = client.get("/api/v1/apis")?;
            println!("{:<24} {:<10} {:<24} {:<11} ENDPOINTS", "NAME", "VERSION", "CONTEXT", "STATE");
            for api in apis {
                let endpoints = api["endpoints"]
                    .as_array()
                    .map(|e| e.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","));
                println!(
                    "{:<24} {:<10} {:<24} {:<11} {}",
                    str_of(&api, "name"),
                    str_of(&api, "version"),
                    str_of(&api, "context"),
                    str_of(&api, "state"),
                    endpoints.unwrap_or_default()
                );
            }
        }
        ApiCommand::Show { api } => {
            let api = find_api(client, &api)?;
            println!("{}", serde_json::to_string_pretty(&api)?);
        }
        ApiCommand::Publish { api } => lifecycle(client, &api, "PUBLISHED")?,
        ApiCommand::Deprecate { api } => lifecycle(client, &api, "DEPRECATED")?,
        ApiCommand::Retire { api } => lifecycle(client, &api, "RETIRED")?,
        ApiCommand::Block { api } => lifecycle(client, &api, "BLOCKED")?,
        ApiCommand::Delete { api } => {
            let found = find_api(client, &api)?;
            client.delete(&format!("/api/v1/apis/{}", str_of(&found, "id")))?;
            println!("deleted {api}");
        }
        ApiCommand::Update { api, endpoints, settings } => {
            super::endpoints::update(client, &api, endpoints, *settings)?
        }
        ApiCommand::Endpoints { api } => super::endpoints::endpoints(client, &api)?,
    }
    Ok(())
}

fn lifecycle(client: &ControlClient, api: &str, state: &str) -> anyhow::Result<()> {
    let found = find_api(client, api)?;
    let moved: Value =
        client.post(&format!("/api/v1/apis/{}/lifecycle", str_of(&found, "id")), json!({ "state": state }))?;
    println!("{api} {}", str_of(&moved, "state"));
    Ok(())
}

pub fn app(client: &ControlClient, command: AppCommand) -> anyhow::Result<()> {
    match command {
        AppCommand::Create { name, description, plan } => {
            let body = json!({ "name": name, "description": description, "plan": plan });
            let app: Value = client.post("/api/v1/applications", body)?;
            println!("{} ({})", str_of(&app, "name"), str_of(&app, "id"));
        }
        AppCommand::List => {
            let apps: Vec<Value> = client.get("/api/v1/applications")?;
            println!("{:<24} {:<34} OWNER", "NAME", "ID");
            for app in apps {
                println!("{:<24} {:<34} {}", str_of(&app, "name"), str_of(&app, "id"), str_of(&app, "owner"));
            }
        }
    }
    Ok(())
}

pub fn subscribe(client: &ControlClient, app: &str, api: &str, plan: &str) -> anyhow::Result<()> {
    let app_record = find_app(client, app)?;
    let api_record = find_api(client, api)?;
    let body =
        json!({ "application_id": str_of(&app_record, "id"), "api_id": str_of(&api_record, "id"), "plan": plan });
    let subscription: Value = client.post("/api/v1/subscriptions", body)?;
    println!("{app} subscribed to {api} with {plan} ({})", str_of(&subscription, "state"));
    Ok(())
}

pub fn subscription(client: &ControlClient, command: SubscriptionCommand) -> anyhow::Result<()> {
    match command {
        SubscriptionCommand::List { api } => {
            let path = match api {
                Some(api) => format!("/api/v1/subscriptions?api_id={}", str_of(&find_api(client, &api)?, "id")),
                None => "/api/v1/subscriptions".to_string(),
            };
            let subscriptions: Vec<Value> = client.get(&path)?;
            println!("{:<34} {:<34} {:<34} {:<10} {:<8} SCOPES", "ID", "APPLICATION", "API", "PLAN", "STATE");
            for s in subscriptions {
                let scopes = s["granted_scopes"]
                    .as_array()
                    .map(|list| list.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","));
                println!(
                    "{:<34} {:<34} {:<34} {:<10} {:<8} {}",
                    str_of(&s, "id"),
                    str_of(&s, "application_id"),
                    str_of(&s, "api_id"),
                    str_of(&s, "plan"),
                    str_of(&s, "state"),
                    scopes.unwrap_or_default()
                );
            }
        }
        SubscriptionCommand::Block { id } => set_subscription_state(client, &id, "BLOCKED")?,
        SubscriptionCommand::Unblock { id } => set_subscription_state(client, &id, "ACTIVE")?,
        command @ (SubscriptionCommand::Usage { .. } | SubscriptionCommand::Plan { .. }) => {
            super::plans::subscription(client, command)?;
        }
        SubscriptionCommand::Grant { id, scopes } => {
            let scopes: Vec<String> = scopes.into_iter().filter(|s| !s.is_empty()).collect();
            let granted: Value =
                client.put(&format!("/api/v1/subscriptions/{id}/scopes"), json!({ "scopes": scopes }))?;
            let list = granted["granted_scopes"]
                .as_array()
                .map(|list| list.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            println!("{id} granted: {}", if list.is_empty() { "(none)" } else { &list });
        }
    }
    Ok(())
}

fn set_subscription_state(client: &ControlClient, id: &str, state: &str) -> anyhow::Result<()> {
    let moved: Value = client.post(&format!("/api/v1/subscriptions/{id}/state"), json!({ "state": state }))?;
    println!("{id} {}", str_of(&moved, "state"));
    Ok(())
}

pub fn keys(client: &ControlClient, app: &str) -> anyhow::Result<()> {
    let app_record = find_app(client, app)?;
    let keys: Value = client.post(&format!("/api/v1/applications/{}/keys", str_of(&app_record, "id")), json!({}))?;
    println!("client_id: {}", str_of(&keys, "client_id"));
    println!("client_secret: {}", str_of(&keys, "client_secret"));
    eprintln!("The secret is shown only once: keep it now.");
    Ok(())
}

pub fn token(client: &ControlClient, app: &str, scope: Option<&str>) -> anyhow::Result<()> {
    let app_record = find_app(client, app)?;
    let body = match scope {
        Some(scope) => json!({ "scope": scope }),
        None => json!({}),
    };
    let token: Value = client.post(&format!("/api/v1/applications/{}/token", str_of(&app_record, "id")), body)?;
    let access = token["access_token"].as_str().ok_or_else(|| anyhow!("the answer holds no access_token"))?;
    println!("{access}");
    Ok(())
}

/// `wsgate revoke --token T` or `--app N`.
pub fn revoke(client: &ControlClient, token: Option<&str>, app: Option<&str>) -> anyhow::Result<()> {
    match (token, app) {
        (Some(token), _) => {
            let revoked: Value = client.post("/api/v1/revocations", json!({ "token": token }))?;
            println!("revoked token {}", str_of(&revoked, "revoked"));
        }
        (None, Some(app)) => {
            let app_record = find_app(client, app)?;
            let _: Value =
                client.post(&format!("/api/v1/applications/{}/revocations", str_of(&app_record, "id")), json!({}))?;
            println!("revoked every token of {app} issued until now");
        }
        (None, None) => anyhow::bail!("pass --token or --app"),
    }
    Ok(())
}

/// The API named `NAME:VERSION` (versions compared as the gateway does: `1.0` = `1.0.0`).
pub(super) fn find_api(client: &ControlClient, text: &str) -> anyhow::Result<Value> {
    let (name, version) = name_version(text)?;
    let wanted = wsgate_core::version::canonical(version);
    let apis: Vec<Value> = client.get("/api/v1/apis")?;
    apis.into_iter()
        .find(|api| str_of(api, "name") == name && wsgate_core::version::canonical(str_of(api, "version")) == wanted)
        .ok_or_else(|| anyhow!("no API {text}"))
}

/// The caller's application named `name`.
fn find_app(client: &ControlClient, name: &str) -> anyhow::Result<Value> {
    let apps: Vec<Value> = client.get("/api/v1/applications")?;
    apps.into_iter().find(|app| str_of(app, "name") == name).with_context(|| format!("no application named {name}"))
}

/// `wsgate nodes`: one line per node, as `GET /api/v1/nodes` lists them.
pub fn nodes(client: &ControlClient) -> anyhow::Result<()> {
    let nodes: Vec<Value> = client.get("/api/v1/nodes")?;
    println!("{:<20} {:<8} {:>11} {:<9} {:<21} {:>9}  ID", "NAME", "STATE", "CONNECTIONS", "VERSION", "WS", "SEEN");
    for node in nodes {
        let seen = node["seconds_since_seen"].as_f64().map(|s| format!("{s:.1}s ago")).unwrap_or_default();
        println!(
            "{:<20} {:<8} {:>11} {:<9} {:<21} {:>9}  {}",
            str_of(&node, "name"),
            str_of(&node, "state"),
            node["connections"].as_u64().unwrap_or_default(),
            str_of(&node, "version"),
            node["addresses"]["ws"].as_str().unwrap_or("-"),
            seen,
            str_of(&node, "id"),
        );
    }
    Ok(())
}

pub(super) fn str_of<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_default()
}

/// `wsgate signing-key list|rotate`.
pub fn signing_key(client: &ControlClient, command: SigningKeyCommand) -> anyhow::Result<()> {
    let line = |key: &Value| {
        let time = |field: &str| key[field].as_i64().map_or_else(|| "-".to_string(), |t| t.to_string());
        format!(
            "{:<44} {:<9} {:<11} {:<11} {}",
            str_of(key, "kid"),
            str_of(key, "algorithm"),
            time("created_at"),
            time("signs_until"),
            time("retire_at")
        )
    };
    let keys: Vec<Value> = match command {
        SigningKeyCommand::List => client.get("/api/v1/signing-keys")?,
        SigningKeyCommand::Rotate { kid } => {
            let body = match kid {
                Some(kid) => json!({ "kid": kid }),
                None => json!({}),
            };
            // The key signing now, whether this request or an earlier one made it.
            vec![client.post("/api/v1/signing-keys/rotate", body)?]
        }
    };
    println!("{:<44} {:<9} {:<11} {:<11} RETIRES AT", "KID", "ALGORITHM", "CREATED", "SIGNS UNTIL");
    for key in &keys {
        println!("{}", line(key));
    }
    Ok(())
}

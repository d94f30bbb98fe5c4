//! `wsgate api update` and `wsgate api endpoints`: an API's endpoints, endpoint settings and
//! allowed origins, and each endpoint's state, through the REST API. A flag's value is checked
//! here first, so a typo is one line naming the flag; the server checks the rest (weights that
//! fit the endpoints, breaker thresholds) and its refusal names the setting.

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};
use wsgate_core::upstream::Balancing;

use super::ControlClient;
use super::commands::{find_api, str_of};
use crate::cli::EndpointFlags;

/// `wsgate api update NAME:VERSION [--endpoint URL]... [settings flags]`.
pub fn update(client: &ControlClient, api: &str, endpoints: Vec<String>, flags: EndpointFlags) -> anyhow::Result<()> {
    let found = find_api(client, api)?;
    let id = str_of(&found, "id").to_string();
    // PUT replaces the API: send back what it holds, changed where asked.
    let mut body = Map::new();
    for field in [
        "name",
        "context",
        "version",
        "endpoints",
        "plans",
        "auth",
        "default_version",
        "ca_file",
        "insecure_skip_verify",
        "scopes",
        "close_on_token_expiry",
        "api_plan",
        "client_plan",
    ] {
        if let Some(value) = found.get(field) {
            body.insert(field.into(), value.clone());
        }
    }
    if !endpoints.is_empty() {
        body.insert("endpoints".into(), json!(endpoints));
    }
    if flags.any_origin && !flags.allowed_origins.is_empty() {
        bail!("--any-origin and --allowed-origin contradict each other: give one of them");
    }
    if flags.any_origin {
        body.insert("allowed_origins".into(), json!([]));
    } else if !flags.allowed_origins.is_empty() {
        body.insert("allowed_origins".into(), json!(flags.allowed_origins));
    }
    if let Some(settings) = settings(&found, flags)? {
        body.insert("endpoint_settings".into(), settings);
    }
    let stored: Value = client.put(&format!("/api/v1/apis/{id}"), Value::Object(body))?;
    println!("{api} updated");
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "endpoints": stored["endpoints"],
            "endpoint_settings": stored["endpoint_settings"],
            "allowed_origins": stored["allowed_origins"],
        }))?
    );
    Ok(())
}

/// The endpoint settings to send, or `None` when no flag touches them (the stored ones stay).
fn settings(found: &Value, flags: EndpointFlags) -> anyhow::Result<Option<Value>> {
    let EndpointFlags {
        endpoint_settings,
        connect_timeout,
        upstream_handshake_timeout,
        idle_timeout,
        close_timeout,
        max_lifetime,
        ping_interval,
        ping_timeout,
        max_frame_size,
        max_message_size,
        retries,
        load_balancing,
        weights,
        breaker,
        breaker_failures,
        breaker_failure_percent,
        breaker_min_attempts,
        breaker_window,
        breaker_cool_down,
        breaker_progression_factor,
        breaker_max_cool_down,
        probe,
        probe_interval,
        probe_timeout,
        allowed_origins: _,
        any_origin: _,
    } = flags;
    let mut touched = false;
    let mut settings = match endpoint_settings {
        Some(path) => {
            touched = true;
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("--endpoint-settings: cannot read {}", path.display()))?;
            let value: Value = serde_json::from_str(&text)
                .map_err(|err| anyhow::anyhow!("--endpoint-settings: {} is not JSON: {err}", path.display()))?;
            if !value.is_object() {
                bail!("--endpoint-settings: {} must hold a JSON object of settings", path.display());
            }
            value
        }
        None => found.get("endpoint_settings").cloned().unwrap_or_else(|| json!({})),
    };
    let Value::Object(top) = &mut settings else { bail!("the API's endpoint_settings is not a JSON object") };

    let top_flags: [(&str, &str, Option<String>, Check); 10] = [
        ("--connect-timeout", "connect_timeout", connect_timeout, Check::Duration),
        ("--upstream-handshake-timeout", "upstream_handshake_timeout", upstream_handshake_timeout, Check::Duration),
        ("--idle-timeout", "idle_timeout", idle_timeout, Check::Duration),
        ("--close-timeout", "close_timeout", close_timeout, Check::Duration),
        ("--max-lifetime", "max_lifetime", max_lifetime, Check::Duration),
        ("--ping-interval", "ping_interval", ping_interval, Check::Duration),
        ("--ping-timeout", "ping_timeout", ping_timeout, Check::Duration),
        ("--max-frame-size", "max_frame_size", max_frame_size, Check::Number),
        ("--max-message-size", "max_message_size", max_message_size, Check::Number),
        ("--retries", "retries", retries, Check::Number),
    ];
    for (flag, key, value, check) in top_flags {
        let Some(text) = value else { continue };
        touched = true;
        if text == "default" {
            top.remove(key);
        } else {
            top.insert(key.into(), check.value(flag, &text, true)?);
        }
    }
    if let Some(how) = load_balancing {
        touched = true;
        if Balancing::parse(&how).is_none() {
            bail!(
                "--load-balancing: \"{how}\" is not round_robin, least_connections, hash_application or hash_client_address"
            );
        }
        top.insert("load_balancing".into(), json!(how));
    }
    if let Some(weights) = weights {
        touched = true;
        let list: Vec<u32> = if weights == "none" {
            Vec::new()
        } else {
            weights.split(',').map(|w| w.trim().parse::<u32>()).collect::<Result<_, _>>().map_err(|_| {
                anyhow::anyhow!("--weights: \"{weights}\" is not whole numbers separated by commas (e.g. 3,1) or none")
            })?
        };
        top.insert("weights".into(), json!(list));
    }

    let breaker_flags: [(&str, &str, Option<String>, Check); 7] = [
        ("--breaker-failures", "consecutive_failures", breaker_failures, Check::Number),
        ("--breaker-failure-percent", "failure_percent", breaker_failure_percent, Check::Number),
        ("--breaker-min-attempts", "min_attempts", breaker_min_attempts, Check::Number),
        ("--breaker-window", "window", breaker_window, Check::Duration),
        ("--breaker-cool-down", "cool_down", breaker_cool_down, Check::Duration),
        ("--breaker-progression-factor", "progression_factor", breaker_progression_factor, Check::Number),
        ("--breaker-max-cool-down", "max_cool_down", breaker_max_cool_down, Check::Duration),
    ];
    if breaker.is_some() || breaker_flags.iter().any(|(_, _, value, _)| value.is_some()) {
        touched = true;
        let entry = top.entry("breaker").or_insert_with(|| json!({}));
        let Value::Object(section) = entry else { bail!("the API's breaker settings are not a JSON object") };
        match breaker.as_deref() {
            None => {}
            Some("on") => {
                section.insert("enabled".into(), json!(true));
            }
            Some("off") => {
                section.insert("enabled".into(), json!(false));
            }
            Some(other) => bail!("--breaker: \"{other}\" is not on or off"),
        }
        for (flag, key, value, check) in breaker_flags {
            if let Some(text) = value {
                section.insert(key.into(), check.value(flag, &text, false)?);
            }
        }
    }

    if let Some(kind) = probe {
        touched = true;
        match kind.as_str() {
            "off" => {
                top.remove("probe");
            }
            "tcp" => set_probe(top, json!({"kind": "tcp"})),
            other => match other.strip_prefix("websocket:") {
                Some(path) if path.starts_with('/') => set_probe(top, json!({"kind": "websocket", "path": path})),
                _ if other == "websocket" => set_probe(top, json!({"kind": "websocket"})),
                _ => bail!("--probe: \"{other}\" is not off, tcp or websocket:/PATH (e.g. websocket:/health)"),
            },
        }
    }
    for (flag, key, value) in
        [("--probe-interval", "interval", probe_interval), ("--probe-timeout", "timeout", probe_timeout)]
    {
        let Some(text) = value else { continue };
        touched = true;
        let Some(Value::Object(section)) = top.get_mut("probe") else {
            bail!("{flag} needs a probe: add --probe tcp or --probe websocket:/PATH");
        };
        section.insert(key.into(), Check::Duration.value(flag, &text, false)?);
    }
    Ok(touched.then_some(settings))
}

/// Turns on a probe of this kind, keeping the interval and timeout already set.
fn set_probe(top: &mut Map<String, Value>, probe: Value) {
    let mut merged = match top.remove("probe") {
        Some(Value::Object(old)) => old,
        _ => Map::new(),
    };
    merged.remove("path");
    if let Value::Object(new) = probe {
        merged.extend(new);
    }
    top.insert("probe".into(), Value::Object(merged));
}

#[derive(Clone, Copy)]
enum Check {
    Duration,
    Number,
}

impl Check {
    /// The JSON value of a flag, or one line saying what is wrong with it.
    fn value(self, flag: &str, text: &str, may_default: bool) -> anyhow::Result<Value> {
        let or_default = if may_default { " or default" } else { "" };
        match self {
            Check::Duration => match wsgate_core::duration::parse(text) {
                Ok(_) if text.trim() == text => Ok(json!(text)),
                _ => bail!("{flag}: \"{text}\" is not a duration like 250ms, 10s, 5m, 1h or 7d{or_default}"),
            },
            Check::Number => match text.parse::<u64>() {
                Ok(n) => Ok(json!(n)),
                Err(_) => bail!("{flag}: \"{text}\" is not a whole number{or_default}"),
            },
        }
    }
}

/// `wsgate api endpoints NAME:VERSION`: one line per endpoint.
pub fn endpoints(client: &ControlClient, api: &str) -> anyhow::Result<()> {
    let found = find_api(client, api)?;
    let view: Value = client.get(&format!("/api/v1/apis/{}/endpoints", str_of(&found, "id")))?;
    println!("{:<40} {:<24} {:>6} {:>7} {:>8} LAST FAILURE", "ENDPOINT", "STATE", "WEIGHT", "ACTIVE", "FAILURES");
    for endpoint in view["endpoints"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let state = match (str_of(endpoint, "state"), endpoint["retry_in_ms"].as_u64()) {
            ("suspended", Some(ms)) => format!("suspended ({} s left)", ms.div_ceil(1000)),
            (state, _) => state.to_string(),
        };
        let number = |key: &str| endpoint[key].as_u64().map_or_else(|| "-".to_string(), |n| n.to_string());
        println!(
            "{:<40} {:<24} {:>6} {:>7} {:>8} {}",
            str_of(endpoint, "url"),
            state,
            number("weight"),
            number("active_connections"),
            number("consecutive_failures"),
            endpoint["last_failure"].as_str().unwrap_or("-"),
        );
    }
    if view["reported"] == false {
        eprintln!(
            "The gateway reports no state for this API (not published, or no gateway beside this control plane)."
        );
    }
    Ok(())
}

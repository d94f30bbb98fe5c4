//! `wsgate plan …` and `wsgate subscription …`: business plans and what subscriptions use of
//! them, through the REST API.

use anyhow::bail;
use serde_json::{Map, Value, json};

use super::ControlClient;
use super::commands::str_of;
use crate::cli::{PlanCommand, PlanFlags, SubscriptionCommand};

pub fn plan(client: &ControlClient, command: PlanCommand) -> anyhow::Result<()> {
    match command {
        PlanCommand::Create { name, flags } => {
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            apply(&mut body, flags)?;
            let plan: Value = client.post("/api/v1/plans", Value::Object(body))?;
            println!("{}", describe(&plan));
        }
        PlanCommand::List => {
            let plans: Vec<Value> = client.get("/api/v1/plans")?;
            println!(
                "{:<14} {:<12} {:<14} {:<5} {:<11} {:<12} {:<9} DESCRIPTION",
                "NAME", "MESSAGES", "BYTES", "COUNT", "CONNECTIONS", "NEW CONN", "ON EXCEED"
            );
            for plan in plans {
                let or_dash = |field: &str| match &plan[field] {
                    Value::Null => "-".to_string(),
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                println!(
                    "{:<14} {:<12} {:<14} {:<5} {:<11} {:<12} {:<9} {}",
                    str_of(&plan, "name"),
                    or_dash("messages"),
                    or_dash("bytes"),
                    str_of(&plan, "count"),
                    or_dash("connections"),
                    or_dash("connection_rate"),
                    str_of(&plan, "on_exceed"),
                    str_of(&plan, "description"),
                );
            }
        }
        PlanCommand::Show { name } => {
            let plan: Value = client.get(&format!("/api/v1/plans/{name}"))?;
            println!("{}", serde_json::to_string_pretty(&plan)?);
        }
        PlanCommand::Update { name, flags } => {
            let current: Value = client.get(&format!("/api/v1/plans/{name}"))?;
            let Value::Object(mut body) = current else { bail!("the plan {name} is not a JSON object") };
            apply(&mut body, flags)?;
            let plan: Value = client.put(&format!("/api/v1/plans/{name}"), Value::Object(body))?;
            println!("{}", describe(&plan));
        }
        PlanCommand::Delete { name } => {
            client.delete(&format!("/api/v1/plans/{name}"))?;
            println!("deleted plan {name}");
        }
    }
    Ok(())
}

/// Writes the given flags into a plan's JSON; `none` removes a limit.
fn apply(body: &mut Map<String, Value>, flags: PlanFlags) -> anyhow::Result<()> {
    let PlanFlags { description, messages, bytes, count, connections, connection_rate, on_exceed } = flags;
    if let Some(description) = description {
        body.insert("description".into(), json!(description));
    }
    for (field, value) in [("messages", messages), ("bytes", bytes), ("connection_rate", connection_rate)] {
        match value.as_deref() {
            None => {}
            Some("none") => {
                body.remove(field);
            }
            Some(rate) => {
                body.insert(field.into(), json!(rate));
            }
        }
    }
    match connections.as_deref() {
        None => {}
        Some("none") => {
            body.remove("connections");
        }
        Some(text) => match text.parse::<u32>() {
            Ok(n) => {
                body.insert("connections".into(), json!(n));
            }
            Err(_) => bail!("--connections {text}: give a whole number, or none"),
        },
    }
    for (field, value) in [("count", count), ("on_exceed", on_exceed)] {
        if let Some(value) = value {
            body.insert(field.into(), json!(value));
        }
    }
    Ok(())
}

/// `Gold: 20000/min messages (both ways, throttle), 200 connections at once`.
fn describe(plan: &Value) -> String {
    let mut parts = Vec::new();
    let traffic = format!("{}, {}", str_of(plan, "count"), str_of(plan, "on_exceed"));
    for (field, noun) in [("messages", "messages"), ("bytes", "bytes")] {
        if let Some(rate) = plan[field].as_str() {
            parts.push(format!("{rate} {noun} ({traffic})"));
        }
    }
    if let Some(n) = plan["connections"].as_u64() {
        parts.push(format!("{n} connections at once"));
    }
    if let Some(rate) = plan["connection_rate"].as_str() {
        parts.push(format!("{rate} new connections"));
    }
    let limits = if parts.is_empty() { "unlimited".to_string() } else { parts.join(", ") };
    format!("{}: {limits}", str_of(plan, "name"))
}

pub fn subscription(client: &ControlClient, command: SubscriptionCommand) -> anyhow::Result<()> {
    match command {
        SubscriptionCommand::Usage { id } => {
            let usage: Value = client.get(&format!("/api/v1/subscriptions/{id}/usage"))?;
            println!("subscription {id}: plan {} ({})", str_of(&usage, "plan"), str_of(&usage, "state"));
            let mut any = false;
            for (field, noun) in [("messages", "messages"), ("bytes", "bytes"), ("connection_rate", "new connections")]
            {
                if let Some(rate) = usage.get(field).filter(|v| v.is_object()) {
                    any = true;
                    println!(
                        "{noun}: {} used, {} left of {}",
                        rate["used"],
                        rate["left"],
                        rate["limit"].as_str().unwrap_or_default()
                    );
                }
            }
            if let Some(connections) = usage.get("connections").filter(|v| v.is_object()) {
                any = true;
                println!("connections: {} open of {}", connections["open"], connections["limit"]);
            }
            if !any {
                println!("unlimited");
            }
        }
        SubscriptionCommand::Plan { id, plan } => {
            let moved: Value = client.put(&format!("/api/v1/subscriptions/{id}/plan"), json!({ "plan": plan }))?;
            println!("subscription {id} is now on {}", str_of(&moved, "plan"));
        }
        // The other subscription commands are `commands::subscription`'s, which sends only these.
        other => return super::commands::subscription(client, other),
    }
    Ok(())
}

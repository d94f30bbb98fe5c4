//! Session analytics over REST: records fed through the analytics writer into the control
//! plane's store come back as the API's and the application's series, codes and top lists; a
//! bad range is a 400 that says what to use; only publishers (and admins) read an API's, only
//! the owner (and admins) an application's, even with the id in hand.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use wsgate_core::config::AnalyticsSettings;
use wsgate_core::session::{ClosedBy, SessionRecord, SessionSink};

use super::harness::control;

/// A connection to `api` by `application` that ended now, or a refusal with `status`.
pub fn session(connection: u64, api: &str, application: Option<&str>, status: u16) -> SessionRecord {
    let now = wsgate_analytics::now_ms();
    let upgraded = status == 101;
    SessionRecord {
        connection,
        api_id: Some(api.into()),
        api_name: "Charted".into(),
        api_version: "1.0".into(),
        application_id: application.map(str::to_owned),
        plan: Some("Gold".into()),
        client_ip: None,
        started_at: now - 2_000,
        at: now,
        last: true,
        status,
        refusal: (!upgraded).then(|| "limit_reached".into()),
        messages_in: if upgraded { 3 } else { 0 },
        bytes_in: if upgraded { 30 } else { 0 },
        messages_out: if upgraded { 5 } else { 0 },
        bytes_out: if upgraded { 50 } else { 0 },
        client_close: upgraded.then_some(1000),
        upstream_close: if connection.is_multiple_of(2) { Some(1011) } else { None },
        closed_by: upgraded.then_some(if connection.is_multiple_of(2) { ClosedBy::Upstream } else { ClosedBy::Client }),
    }
}

/// Writes `records` through a writer over `store` and waits until they are stored.
pub async fn feed(store: Arc<dyn wsgate_store::Store>, records: Vec<SessionRecord>) {
    let settings = AnalyticsSettings { flush_interval: Duration::from_millis(50), ..AnalyticsSettings::default() };
    let (writer, handle) = wsgate_analytics::start(store, &settings);
    for record in records {
        writer.record(record);
    }
    handle.shutdown().await;
}

fn sum(body: &Value, field: &str) -> u64 {
    body["series"].as_array().expect("series").iter().map(|point| point[field].as_u64().expect("count")).sum()
}

#[tokio::test]
async fn the_series_match_the_records_and_only_their_readers_see_them() {
    let control = control().start().await;
    let publisher = control.user("pat", &["creator", "publisher"]).await;
    let alice = control.user("alice", &["subscriber"]).await;
    let bob = control.user("bob", &["subscriber"]).await;
    let api = control.published_api(&publisher, "/charted", &["Gold"]).await;
    let api_id = api["id"].as_str().expect("id").to_string();
    let app = alice.post("/api/v1/applications", json!({"name": "Charting app"})).await.expect(201);
    let app_id = app["id"].as_str().expect("id").to_string();
    let other = bob.post("/api/v1/applications", json!({"name": "Other app"})).await.expect(201);
    let other_id = other["id"].as_str().expect("id").to_string();

    // 4 connections of alice's app, 1 of bob's, 2 refused with 429 and 1 with 401.
    let mut records: Vec<_> = (0..4).map(|n| session(n, &api_id, Some(&app_id), 101)).collect();
    records.push(session(4, &api_id, Some(&other_id), 101));
    records.extend([429, 429, 401].into_iter().enumerate().map(|(n, s)| session(10 + n as u64, &api_id, None, s)));
    records.push(session(20, "another-api", Some(&app_id), 101));
    feed(control.store.clone(), records).await;

    let path = format!("/api/v1/apis/{api_id}/analytics");
    for (range, slots) in [("hour", 60), ("day", 96), ("week", 84)] {
        let body = publisher.get(&format!("{path}?range={range}")).await.expect(200);
        assert_eq!(body["range"], range);
        assert_eq!(body["series"].as_array().expect("series").len(), slots, "{range}: every slot");
        assert_eq!(sum(&body, "opened"), 5, "{range}");
        assert_eq!(sum(&body, "closed"), 5, "{range}");
        assert_eq!(sum(&body, "refused"), 3, "{range}");
        assert_eq!(sum(&body, "messages_in"), 15, "{range}");
        assert_eq!(sum(&body, "bytes_out"), 250, "{range}");
        assert_eq!(body["totals"]["messages_out"], 25);
        assert_eq!(body["totals"]["open_connections"], 5, "{range}: five connections in the same minute");
    }
    let body = publisher.get(&path).await.expect(200);
    assert_eq!(body["range"], "hour", "hour by default");
    assert_eq!(body["refusals"], json!([{"status": 429, "count": 2}, {"status": 401, "count": 1}]));
    let closes = body["closes"].as_array().expect("closes");
    assert!(closes.contains(&json!({"code": 1011, "closed_by": "upstream", "count": 3})), "{closes:?}");
    assert!(closes.contains(&json!({"code": 1000, "closed_by": "client", "count": 2})), "{closes:?}");
    let top = &body["top_applications"];
    assert_eq!(top[0]["application_id"], app_id.as_str());
    assert_eq!(top[0]["name"], "Charting app");
    assert_eq!(top[0]["connections"], 4);
    assert_eq!(top[0]["messages"], 32);
    assert_eq!(top[1]["name"], "Other app");
    assert_eq!(top.as_array().map(Vec::len), Some(2));
    let text = body.to_string();
    assert!(!text.contains("127.0.0") && !text.contains("Bearer"), "no address, no token: {text}");

    // The application's own usage: its connections over every API it used.
    let mine = alice.get(&format!("/api/v1/applications/{app_id}/analytics?range=day")).await.expect(200);
    assert_eq!(sum(&mine, "opened"), 5);
    assert_eq!(sum(&mine, "refused"), 0, "refusals before authentication are nobody's");
    let apis: Vec<_> = mine["apis"].as_array().expect("apis").iter().map(|a| a["api_id"].clone()).collect();
    assert_eq!(apis.len(), 2);
    assert!(apis.contains(&json!(api_id)) && apis.contains(&json!("another-api")));

    // A bad range says what to use.
    let refused = publisher.get(&format!("{path}?range=year")).await.refused(400, "malformed_body", Some("range"));
    assert!(refused["message"].as_str().is_some_and(|m| m.contains("hour, day or week")), "{refused}");
    alice.get(&format!("/api/v1/applications/{app_id}/analytics?range=month")).await.refused(
        400,
        "malformed_body",
        Some("range"),
    );

    // Who may read what, with the ids in hand.
    alice.get(&path).await.refused(403, "missing_role", None);
    bob.get(&format!("/api/v1/applications/{app_id}/analytics")).await.refused(404, "not_found", None);
    publisher.get(&format!("/api/v1/applications/{app_id}/analytics")).await.refused(404, "not_found", None);
    control.admin().await.get(&format!("/api/v1/applications/{app_id}/analytics")).await.expect(200);
    publisher.get("/api/v1/apis/no-such-api/analytics").await.refused(404, "not_found", None);
    control.http.send(ureq::http::Method::GET, &path, vec![], None).await.expect(401);
}

//! The REST API fuzzed from its own OpenAPI document: schemathesis (`WSGATE_SCHEMATHESIS`, a
//! pinned PyPI package that `scripts/test` installs) generates requests from
//! `GET /api/v1/openapi.json`, valid and invalid, and checks every answer: no 5xx, statuses,
//! content types, headers and bodies as documented, schema-valid requests not refused as
//! malformed (400), schema-invalid ones not accepted. The settings, and why a 422 counts as
//! accepting schema-valid data, are in `tests/fuzz/schemathesis.toml`.
//!
//! The control plane runs in-process with fixtures (a published API with a scope, an
//! application, a subscription) whose ids fill the document's `{id}` parameters, so operations
//! reach their logic rather than a 404. The seed is fixed so a run is reproducible; a failure
//! prints schemathesis' report, with a `curl` line per finding.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use super::harness::{Scratch, With, api_body, control};
use crate::harness::process::tool;
use crate::harness::within;

/// Test cases per operation and the seed: about half a minute against a debug build.
const EXAMPLES: &str = "15";
const SEED: &str = "9";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_api_keeps_to_its_openapi_document_under_fuzzing() {
    let schemathesis = tool("WSGATE_SCHEMATHESIS", "schemathesis");
    let control = control().trusting_issuer("https://idp.example").start().await;
    let admin = control.admin().await;
    let api = api_body("Fuzzed", "/fuzzed", "1.0").with("scopes", json!(["chat"])).with("publish", json!(true));
    let api = admin.post("/api/v1/apis", api).await.expect(201);
    let app = admin.post("/api/v1/applications", json!({"name": "Fuzzed"})).await.expect(201);
    let subscription = json!({"application_id": app["id"], "api_id": api["id"], "plan": "Gold"});
    let subscription = admin.post("/api/v1/subscriptions", subscription).await.expect(201);

    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fuzz/schemathesis.toml");
    let base = control.http.base.replace("127.0.0.1", "localhost");
    let work = Scratch::new("fuzz");
    let run = tokio::process::Command::new(&schemathesis)
        .current_dir(&work.0)
        .args(["--no-color", "--config-file", config, "run"])
        .arg(format!("{base}/api/v1/openapi.json"))
        .args(["--url", &base, "--tls-verify"])
        .arg(&control.certificate.cert)
        .args(["--header", &format!("Authorization: Bearer {}", admin.token)])
        .args(["--checks", "all", "--max-examples", EXAMPLES, "--seed", SEED, "--workers", "2"])
        .args(["--phases", "examples,coverage,fuzzing"])
        // The server closes keep-alive connections idle for `handshake_timeout`; a request that
        // races such a close is sent again, as any HTTP client would.
        .args(["--request-retries", "2"])
        .env("WSGATE_FUZZ_API", api["id"].as_str().expect("id"))
        .env("WSGATE_FUZZ_APPLICATION", app["id"].as_str().expect("id"))
        .env("WSGATE_FUZZ_SUBSCRIPTION", subscription["id"].as_str().expect("id"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|err| panic!("{} starts: {err}", schemathesis.display()));
    let output = within(Duration::from_secs(240), "schemathesis finishes", run.wait_with_output())
        .await
        .expect("schemathesis' output is readable");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

//! An API's endpoint settings and `Origin` allow-list over REST: stored and read back, kept by
//! a PUT that does not send them, refused naming the field, weights that must fit the
//! endpoints; and who may read an API's upstream (endpoints, settings, their live state).

use serde_json::{Value, json};

use super::harness::{With, api_body, control};

fn settings() -> Value {
    json!({
        "connect_timeout": "1500ms",
        "upstream_handshake_timeout": "5s",
        "max_lifetime": "1h",
        "ping_interval": "30s",
        "max_frame_size": 65536,
        "retries": 1,
        "load_balancing": "least_connections",
        "weights": [3, 1],
        "breaker": {"enabled": true, "consecutive_failures": 3, "cool_down": "20s", "max_cool_down": "2m"},
        "probe": {"kind": "websocket", "path": "/health", "interval": "5s"},
    })
}

fn two_endpoints(context: &str) -> Value {
    api_body(&context[1..], context, "1.0").with("endpoints", json!(["ws://127.0.0.1:7070", "ws://127.0.0.1:7071"]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_and_origins_round_trip_and_survive_a_put_without_them() {
    let control = control().start().await;
    let carl = control.user("carl", &["creator"]).await;
    let body = two_endpoints("/tuned")
        .with("endpoint_settings", settings())
        .with("allowed_origins", json!(["https://app.example.com", "http://localhost:3000"]));
    let created = carl.post("/api/v1/apis", body).await.expect(201);
    let path = format!("/api/v1/apis/{}", created["id"].as_str().expect("id"));

    let stored = carl.get(&path).await.expect(200);
    let got = &stored["endpoint_settings"];
    assert_eq!(got["connect_timeout"], "1500ms");
    assert_eq!(got["max_lifetime"], "1h");
    assert_eq!(got["load_balancing"], "least_connections");
    assert_eq!(got["weights"], json!([3, 1]));
    assert_eq!(got["breaker"]["consecutive_failures"], 3);
    assert_eq!(got["breaker"]["cool_down"], "20s");
    assert_eq!(got["breaker"]["window"], "30s", "a breaker field left out takes its default");
    assert_eq!(got["probe"]["kind"], "websocket");
    assert_eq!(got["probe"]["path"], "/health");
    assert_eq!(got.get("idle_timeout"), None, "a setting left out is the gateway's default");
    assert_eq!(stored["allowed_origins"], json!(["https://app.example.com", "http://localhost:3000"]));

    // An older client's PUT (no endpoint_settings, no allowed_origins) changes what it sends only.
    let renamed = carl.put(&path, two_endpoints("/tuned").with("name", json!("Renamed"))).await.expect(200);
    assert_eq!(renamed["name"], "Renamed");
    assert_eq!(renamed["endpoint_settings"], stored["endpoint_settings"], "absent settings are kept");
    assert_eq!(renamed["allowed_origins"], stored["allowed_origins"], "absent origins are kept");
    assert_eq!(carl.get(&path).await.expect(200)["endpoint_settings"], stored["endpoint_settings"]);

    // New ones replace them; null resets to every default and to any origin.
    let replaced = json!({"idle_timeout": "2m", "breaker": {"enabled": false}});
    let put = two_endpoints("/tuned").with("endpoint_settings", replaced).with("allowed_origins", json!(["null"]));
    let changed = carl.put(&path, put).await.expect(200);
    assert_eq!(changed["endpoint_settings"]["idle_timeout"], "2m");
    assert_eq!(changed["endpoint_settings"]["breaker"]["enabled"], false);
    assert_eq!(changed["endpoint_settings"].get("weights"), None, "replaced as a whole");
    assert_eq!(changed["allowed_origins"], json!(["null"]));
    let reset = two_endpoints("/tuned").with("endpoint_settings", Value::Null).with("allowed_origins", Value::Null);
    let reset = carl.put(&path, reset).await.expect(200);
    assert_eq!(reset["endpoint_settings"]["load_balancing"], "round_robin");
    assert_eq!(reset["endpoint_settings"]["breaker"]["enabled"], true, "the breaker is on by default");
    assert_eq!(reset["allowed_origins"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_and_origins_are_refused_naming_the_field() {
    let control = control().start().await;
    let carl = control.user("carl", &["creator"]).await;
    let with = |settings: Value| two_endpoints("/bad").with("endpoint_settings", settings);
    let rows: Vec<(&str, Value, u16, &str, &str)> = vec![
        (
            "zero duration",
            with(json!({"connect_timeout": "0s"})),
            422,
            "invalid_value",
            "endpoint_settings.connect_timeout",
        ),
        ("bare number", with(json!({"idle_timeout": "10"})), 422, "invalid_value", "endpoint_settings.idle_timeout"),
        (
            "unknown unit",
            with(json!({"max_lifetime": "1 week"})),
            422,
            "invalid_value",
            "endpoint_settings.max_lifetime",
        ),
        (
            "breaker window",
            with(json!({"breaker": {"window": "0ms"}})),
            422,
            "invalid_value",
            "endpoint_settings.breaker.window",
        ),
        (
            "ratio",
            with(json!({"breaker": {"failure_percent": 101}})),
            422,
            "invalid_value",
            "endpoint_settings.breaker.failure_percent",
        ),
        (
            "probe path",
            with(json!({"probe": {"path": "health"}})),
            422,
            "invalid_value",
            "endpoint_settings.probe.path",
        ),
        (
            "probe interval",
            with(json!({"probe": {"interval": "10ms"}})),
            422,
            "invalid_value",
            "endpoint_settings.probe.interval",
        ),
        ("retries", with(json!({"retries": 17})), 422, "invalid_value", "endpoint_settings.retries"),
        ("all weights 0", with(json!({"weights": [0, 0]})), 422, "invalid_value", "endpoint_settings.weights"),
        ("too few weights", with(json!({"weights": [1]})), 422, "invalid_value", "endpoint_settings.weights"),
        (
            "unknown balancing",
            with(json!({"load_balancing": "random"})),
            400,
            "malformed_body",
            "endpoint_settings.load_balancing",
        ),
        ("unknown setting", with(json!({"timeout": "1s"})), 400, "malformed_body", "endpoint_settings.timeout"),
        ("not an object", with(json!(["1s"])), 400, "malformed_body", "endpoint_settings"),
        (
            "size not a number",
            with(json!({"max_frame_size": "big"})),
            400,
            "malformed_body",
            "endpoint_settings.max_frame_size",
        ),
        (
            "origin with a path",
            two_endpoints("/bad").with("allowed_origins", json!(["https://a.example", "https://b.example/app"])),
            422,
            "invalid_value",
            "allowed_origins[1]",
        ),
        (
            "origin without scheme",
            two_endpoints("/bad").with("allowed_origins", json!(["app.example.com"])),
            422,
            "invalid_value",
            "allowed_origins[0]",
        ),
        (
            "origin not a string",
            two_endpoints("/bad").with("allowed_origins", json!([7])),
            400,
            "malformed_body",
            "allowed_origins[0]",
        ),
    ];
    let mut failures = Vec::new();
    for (what, body, status, code, field) in rows {
        let reply = carl.post("/api/v1/apis", body).await;
        let answer = reply.json();
        let message = answer["message"].as_str().unwrap_or_default();
        if reply.status != status || answer["error"] != code || answer["field"] != field || !message.starts_with(field)
        {
            failures.push(format!("{what}: {} {answer}", reply.status));
        }
    }
    assert!(failures.is_empty(), "refusals that do not name their field:\n{}", failures.join("\n"));
    assert!(carl.get("/api/v1/apis").await.expect(200).as_array().expect("list").is_empty(), "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_must_fit_the_endpoints_when_only_the_endpoints_change() {
    let control = control().start().await;
    let carl = control.user("carl", &["creator"]).await;
    let body = two_endpoints("/weighted").with("endpoint_settings", json!({"weights": [3, 1]}));
    let created = carl.post("/api/v1/apis", body).await.expect(201);
    let path = format!("/api/v1/apis/{}", created["id"].as_str().expect("id"));

    let three = api_body("weighted", "/weighted", "1.0")
        .with("endpoints", json!(["ws://127.0.0.1:7070", "ws://127.0.0.1:7071", "ws://127.0.0.1:7072"]));
    let refused = carl.put(&path, three.clone()).await.refused(422, "invalid_value", Some("endpoint_settings.weights"));
    let message = refused["message"].as_str().expect("message");
    assert!(
        message.contains("2 stored weights")
            && message.contains("3 endpoints")
            && message.contains("endpoint_settings"),
        "the refusal says what to do: {message}"
    );
    assert_eq!(carl.get(&path).await.expect(200)["endpoints"].as_array().map(Vec::len), Some(2), "nothing changed");

    // Sending weights that fit (or none) along with the endpoints works.
    let fitted = three.clone().with("endpoint_settings", json!({"weights": [3, 1, 1]}));
    assert_eq!(carl.put(&path, fitted).await.expect(200)["endpoint_settings"]["weights"], json!([3, 1, 1]));
    let equal = api_body("weighted", "/weighted", "1.0").with("endpoint_settings", json!({"weights": []}));
    assert_eq!(carl.put(&path, equal).await.expect(200)["endpoint_settings"].get("weights"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_creators_publishers_and_admins_see_an_apis_upstream() {
    let control = control().start().await;
    let both = control.user("bea", &["creator", "publisher"]).await;
    let publisher = control.user("paula", &["publisher"]).await;
    let sam = control.user("sam", &["subscriber"]).await;
    let admin = control.admin().await;
    let published = two_endpoints("/open")
        .with("endpoint_settings", settings())
        .with("allowed_origins", json!(["https://app.example.com"]))
        .with("publish", json!(true));
    let published = both.post("/api/v1/apis", published).await.expect(201);
    let open = published["id"].as_str().expect("id").to_string();
    let hidden = both.post("/api/v1/apis", two_endpoints("/hidden")).await.expect(201);
    let hidden = hidden["id"].as_str().expect("id").to_string();

    // A subscriber sees the published API without its upstream, and not the unpublished one.
    let seen = sam.get(&format!("/api/v1/apis/{open}")).await.expect(200);
    assert_eq!(seen["name"], "open");
    for field in ["endpoints", "endpoint_settings", "ca_file", "insecure_skip_verify"] {
        assert!(seen.get(field).is_none(), "a subscriber does not see {field}: {seen}");
    }
    assert_eq!(seen["allowed_origins"], json!(["https://app.example.com"]), "origins are no secret");
    let listed = sam.get("/api/v1/apis").await.expect(200);
    let listed = listed.as_array().expect("list");
    assert_eq!(listed.len(), 1, "only the published API: {listed:?}");
    assert!(listed[0].get("endpoints").is_none() && listed[0].get("endpoint_settings").is_none());
    sam.get(&format!("/api/v1/apis/{hidden}")).await.refused(404, "not_found", None);

    // The endpoints' state: 403 for a subscriber whichever the id, so it learns nothing.
    for id in [open.as_str(), hidden.as_str(), "0123456789abcdef0123456789abcdef"] {
        sam.get(&format!("/api/v1/apis/{id}/endpoints")).await.refused(403, "missing_role", None);
    }
    // Without a gateway beside this control plane, the configured endpoints in state unknown.
    for caller in [&both, &publisher, &admin] {
        let view = caller.get(&format!("/api/v1/apis/{open}/endpoints")).await.expect(200);
        assert_eq!(view["api_id"], open.as_str());
        assert_eq!(view["reported"], false);
        let rows: Vec<(String, String, u64)> = view["endpoints"]
            .as_array()
            .expect("endpoints")
            .iter()
            .map(|e| {
                let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                (text("url"), text("state"), e["weight"].as_u64().unwrap_or_default())
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("ws://127.0.0.1:7070".to_string(), "unknown".to_string(), 3),
                ("ws://127.0.0.1:7071".to_string(), "unknown".to_string(), 1)
            ]
        );
        let full = caller.get(&format!("/api/v1/apis/{open}")).await.expect(200);
        assert_eq!(full["endpoint_settings"]["weights"], json!([3, 1]), "the publisher side sees everything");
    }
    publisher.get("/api/v1/apis/0123456789abcdef0123456789abcdef/endpoints").await.refused(404, "not_found", None);
}

/// `wsgate api update` sets the settings and origins, `wsgate api endpoints` prints the table,
/// and bad values fail with one line naming the flag or the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sets_and_shows_endpoint_settings() {
    let control = control().start().await;
    let admin = control.admin().await;
    admin.post("/api/v1/apis", two_endpoints("/tuned").with("name", json!("Tuned"))).await.expect(201);
    let cli = Cli { port: control.port, ca: control.certificate.cert.clone() };

    let updated = cli
        .ok(&[
            "api",
            "update",
            "Tuned:1.0",
            "--connect-timeout",
            "2s",
            "--max-lifetime",
            "1h",
            "--load-balancing",
            "least_connections",
            "--weights",
            "3,1",
            "--breaker",
            "off",
            "--probe",
            "websocket:/health",
            "--probe-interval",
            "5s",
            "--allowed-origin",
            "https://app.example.com",
            "--allowed-origin",
            "http://localhost:3000",
        ])
        .await;
    assert!(updated.starts_with("Tuned:1.0 updated"), "{updated}");
    let stored = admin.get("/api/v1/apis").await.expect(200)[0].clone();
    let settings = &stored["endpoint_settings"];
    assert_eq!(settings["connect_timeout"], "2s");
    assert_eq!(settings["max_lifetime"], "1h");
    assert_eq!(settings["load_balancing"], "least_connections");
    assert_eq!(settings["weights"], json!([3, 1]));
    assert_eq!(settings["breaker"]["enabled"], false);
    assert_eq!(
        settings["probe"],
        json!({"kind": "websocket", "path": "/health", "interval": "5s", "timeout": "2s", "unhealthy_after": 2, "healthy_after": 1})
    );
    assert_eq!(stored["allowed_origins"], json!(["https://app.example.com", "http://localhost:3000"]));

    // `default` gives one setting back; the others stay.
    cli.ok(&["api", "update", "Tuned:1.0", "--connect-timeout", "default", "--any-origin"]).await;
    let stored = admin.get("/api/v1/apis").await.expect(200)[0].clone();
    assert_eq!(stored["endpoint_settings"].get("connect_timeout"), None);
    assert_eq!(stored["endpoint_settings"]["max_lifetime"], "1h");
    assert_eq!(stored["allowed_origins"], json!([]));

    let table = cli.ok(&["api", "endpoints", "Tuned:1.0"]).await;
    let lines: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0][..3], ["ENDPOINT", "STATE", "WEIGHT"], "{table}");
    assert_eq!(lines[1][..3], ["ws://127.0.0.1:7070", "unknown", "3"], "{table}");
    assert_eq!(lines[2][..3], ["ws://127.0.0.1:7071", "unknown", "1"], "{table}");

    for (args, expected) in [
        (&["--connect-timeout", "2 s"][..], "--connect-timeout: \"2 s\" is not a duration"),
        (&["--weights", "3,x"], "--weights"),
        (&["--probe", "http"], "--probe: \"http\" is not off, tcp or websocket:/PATH"),
        (&["--load-balancing", "random"], "--load-balancing"),
        (&["--breaker", "maybe"], "--breaker"),
        (&["--weights", "1"], "endpoint_settings.weights: has 1 entries for 2 endpoints"),
        (&["--allowed-origin", "app.example.com"], "allowed_origins[0]"),
        (&["--breaker-window", "0s", "--breaker", "on"], "endpoint_settings.breaker.window"),
    ] {
        let full: Vec<&str> = ["api", "update", "Tuned:1.0"].iter().chain(args).copied().collect();
        cli.fails(&full, expected).await;
    }
}

/// The `wsgate` binary as a client of an in-process control plane, signed in as the admin.
struct Cli {
    port: u16,
    ca: std::path::PathBuf,
}

impl Cli {
    async fn run(&self, args: &[&str]) -> std::process::Output {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_wsgate"))
            .args(args)
            .arg("--server")
            .arg(format!("https://localhost:{}", self.port))
            .arg("--ca")
            .arg(&self.ca)
            .env("WSGATE_USER", "admin")
            .env("WSGATE_PASSWORD", super::harness::ADMIN_PASSWORD)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        crate::harness::within(std::time::Duration::from_secs(30), "the CLI finishes", output).await.expect("runs")
    }

    async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "wsgate {args:?} succeeds; stderr: {stderr}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Non-zero, and one line on stderr containing `expected`.
    async fn fails(&self, args: &[&str], expected: &str) {
        let output = self.run(args).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "wsgate {args:?} fails");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line on stderr for {args:?}: {stderr:?}");
        assert!(lines[0].contains(expected), "{args:?}: {:?} mentions {expected:?}", lines[0]);
    }
}

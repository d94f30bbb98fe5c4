//! After authenticated connections (the token in the Authorization header, in `?access_token=`,
//! and forged ones refused), neither the log nor the metrics carry a token or a secret.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::socket::attempt;
use super::world::world;

/// Collects everything logged on this (current-thread) test runtime, as plain text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_token_or_secret_reaches_the_log_or_the_metrics() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);

    let world = world().with_metrics().start().await;
    let api = world.api("/leaks").published().await;
    let app = world.application("Leaky").await;
    world.subscribe(&app, &api).await;
    let token = world.token(&app).await;

    let mut by_header = world.connect(&api, &token).await;
    by_header.echoes("hello").await;
    let (head, by_query) = attempt(world.ws_addr(), &format!("{}?access_token={token}", api.path), &[]).await;
    assert_eq!(head.status(), 101, "the token in the query upgrades too");
    let mut by_query = by_query.expect("a socket");
    by_query.echoes("hello").await;
    let forged = format!("{token}x");
    let (head, _) = attempt(world.ws_addr(), &format!("{}?access_token={forged}", api.path), &[]).await;
    assert_eq!(head.status(), 401);
    let bearer = [("Authorization".to_string(), format!("Bearer {forged}"))];
    let (head, _) = attempt(world.ws_addr(), &api.path, &bearer).await;
    assert_eq!(head.status(), 401);
    drop(by_header);
    drop(by_query);
    // The access log's lines of the dropped sockets come when the gateway sees them go.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let metrics = world.metrics();
    assert!(metrics.contains("wsgate_handshakes_total"), "metrics were recorded:\n{metrics}");
    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(log.contains("wsgate::access") && log.contains(" conn="), "the access log was captured:\n{log}");
    // A JWT's signature is its most secret-looking part; its payload alone would identify it.
    let signature = token.rsplit('.').next().expect("a JWT");
    for (what, secret) in [("token", token.as_str()), ("its signature", signature), ("client secret", &app.secret)] {
        assert!(!log.contains(secret), "the {what} is in the log:\n{log}");
        assert!(!metrics.contains(secret), "the {what} is in the metrics:\n{metrics}");
    }
    assert!(!log.contains("access_token=ey"), "no query string in the log:\n{log}");
}

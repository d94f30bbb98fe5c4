//! The "Try it" console's second opinion. A browser tells a page nothing about a WebSocket
//! handshake that failed (no status, no body, only an `error` event), so the console used to
//! guess ("is the token still valid, the certificate accepted?") even when the gateway had said
//! exactly what was wrong, say a 502 because the upstream was down. When the browser's socket
//! fails, the page asks here: the control plane makes the same handshake with the same token to
//! the gateway's own listener and reports the gateway's answer, its status and the reason in its
//! body. A 101 means the gateway takes the connection, so it was the browser that refused it,
//! which leaves its certificate check.
//!
//! What goes out is fixed: the URL is the gateway's listener as the binary reported it, the path
//! the API's context and version, the token travels in the `Authorization` header and must be
//! a token's characters; every read is bounded in size and time.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use rustls::pki_types::ServerName;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use wsgate_core::model::ApiRecord;

use super::devportal::usable_api;
use super::forms::Form;
use super::html::Area;
use super::{gateway, visit};
use crate::state::AppState;

/// The gateway's answer may wait for its upstream's connect and handshake timeouts.
const DEADLINE: Duration = Duration::from_secs(20);
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 4 * 1024;
const MAX_TOKEN: usize = 8 * 1024;

/// What the console shows: the gateway's status (0 when it could not be asked) and why.
#[derive(Debug, Serialize)]
pub struct Diagnosis {
    pub status: u16,
    pub reason: String,
}

/// `POST /devportal/apis/{id}/diagnose` with the form fields `csrf` and `token`: the gateway's
/// answer to a handshake with that token, as JSON.
pub async fn diagnose(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    let caller = match visit::form(&state, &headers, &form, Area::Devportal, &format!("/devportal/apis/{id}")).await {
        Ok(caller) => caller,
        Err(refusal) => return refusal,
    };
    let api = match usable_api(&state, &caller, &id).await {
        Ok(api) => api,
        Err(err) => return visit::failure(Area::Devportal, &caller, err),
    };
    let token = form.get("token");
    let diagnosis = if token.is_empty() || token.len() > MAX_TOKEN || !token.bytes().all(token_byte) {
        Diagnosis { status: 0, reason: "the console holds no usable access token; get a test token again".into() }
    } else {
        match tokio::time::timeout(DEADLINE, ask(&state, &api, token)).await {
            Ok(Ok(diagnosis)) => diagnosis,
            Ok(Err(problem)) => Diagnosis { status: 0, reason: problem },
            Err(_) => Diagnosis { status: 0, reason: format!("the gateway did not answer within {DEADLINE:?}") },
        }
    };
    Json(diagnosis).into_response()
}

/// The characters of a JWT (base64url and dots), and nothing that could end a header line.
fn token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'+' | b'/' | b'=')
}

/// Makes the handshake on the gateway's ws listener, else its wss one.
async fn ask(state: &AppState, api: &ApiRecord, token: &str) -> Result<Diagnosis, String> {
    let urls = gateway(state);
    let (url, tls) = match (urls.ws, urls.wss) {
        (Some(ws), _) => (ws, false),
        (None, Some(wss)) => (wss, true),
        (None, None) => return Err("the gateway has no listener".into()),
    };
    let authority = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest).to_string();
    let (host, port) = authority
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host.trim_matches(['[', ']']).to_string(), port.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("the gateway's address {url} has no port"))?;
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|err| format!("cannot reach the gateway at {url}: {err}"))?;
    let request = format!(
        "GET {}/{} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n",
        api.context, api.version
    );
    if !tls {
        return exchange(tcp, &request).await;
    }
    // The gateway's wss listener presents the control plane's own certificate: trust exactly it.
    let Some(certificate) = state.own_certificate.get() else {
        return Err("the control plane does not know the gateway's certificate".into());
    };
    let options = wsgate_tls::client::UpstreamTlsOptions { ca_file: Some(certificate.as_path()), ..Default::default() };
    let config = wsgate_tls::client::client_config(options).map_err(|err| err.to_string())?;
    let name = ServerName::try_from(host.clone()).map_err(|_| format!("{host} is not a TLS server name"))?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|err| wsgate_tls::failure::describe(&err, &host, port))?;
    exchange(stream, &request).await
}

/// Sends `request` and reads the answer's status and body; a 101 is closed again at once.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, request: &str) -> Result<Diagnosis, String> {
    stream.write_all(request.as_bytes()).await.map_err(|err| format!("the gateway closed the connection: {err}"))?;
    let mut buf = Vec::with_capacity(1024);
    let (status, head_len, body_len) = loop {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await.map_err(|err| format!("reading the gateway's answer: {err}"))?;
        if n == 0 {
            return Err("the gateway closed the connection without an answer".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let body = response
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break (response.code.unwrap_or(0), len, body.min(MAX_BODY));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            _ => return Err("the gateway's answer is not HTTP".into()),
        }
    };
    if status == 101 {
        // A masked close frame with code 1000, so the gateway ends the relay cleanly.
        let _ = stream.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8]).await;
        let _ = stream.shutdown().await;
        return Ok(Diagnosis { status, reason: String::new() });
    }
    while buf.len() < head_len + body_len {
        let mut chunk = [0u8; 1024];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let end = buf.len().min(head_len + body_len);
    let reason = String::from_utf8_lossy(&buf[head_len..end]).trim().to_string();
    Ok(Diagnosis { status, reason })
}

//! The TLS step of the wss listener: decrypt before the handshake, so everything after it is
//! the same for ws and wss. A client that speaks plain HTTP to this port gets a readable 400
//! instead of a TLS alert it cannot show.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::rejection::Rejection;

/// First byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Completes the TLS handshake within `timeout`, so a stalled handshake cannot hold a slot.
pub async fn accept(
    tcp: TcpStream,
    acceptor: &TlsAcceptor,
    timeout: Duration,
) -> Result<TlsStream<TcpStream>, Rejection> {
    let mut first = [0u8; 1];
    match tokio::time::timeout(timeout, tcp.peek(&mut first)).await {
        Err(_) => return Err(Rejection::HandshakeTimeout),
        Ok(Err(_)) | Ok(Ok(0)) => return Err(Rejection::TlsHandshakeFailed("connection closed".into())),
        Ok(Ok(_)) if first[0] != TLS_HANDSHAKE_RECORD => {
            let rejection = Rejection::PlainHttpOnTlsPort;
            let mut tcp = tcp;
            rejection.send(&mut tcp, timeout).await;
            return Err(rejection);
        }
        Ok(Ok(_)) => {}
    }
    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Err(_) => Err(Rejection::HandshakeTimeout),
        Ok(Err(err)) => Err(Rejection::TlsHandshakeFailed(err.to_string())),
        Ok(Ok(stream)) => Ok(stream),
    }
}

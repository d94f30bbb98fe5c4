//! Why a TLS handshake with an upstream failed, as one sentence a person can act on: what was
//! wrong and which setting (or which `openssl` flag) fixes it. rustls' own messages name
//! internal types (`Other(OtherError(CaUsedAsEndEntity))`); these never reach a user.

use rustls::pki_types::UnixTime;
use rustls::{AlertDescription, CertificateError};

/// The sentence for a failed handshake with the upstream at `host:port`. `err` is what
/// tokio-rustls returned: a rustls error wrapped in an I/O error, or the socket's own error.
pub fn describe(err: &std::io::Error, host: &str, port: u16) -> String {
    let check = format!("check it with: openssl s_client -connect {host}:{port} -servername {host}");
    let Some(tls) = err.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) else {
        return match err.kind() {
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => format!(
                "the upstream closed the connection during the TLS handshake: is it a wss:// (TLS) server on port \
                 {port}, and does it serve the name {host}? {check}"
            ),
            _ => format!("the TLS handshake with the upstream failed ({err}); {check}"),
        };
    };
    match tls {
        rustls::Error::InvalidCertificate(problem) => certificate(problem, host, port),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => format!(
            "the upstream at {host}:{port} does not speak TLS: if it serves plain WebSocket, make the endpoint ws:// \
             instead of wss://"
        ),
        rustls::Error::NoCertificatesPresented => {
            format!("the upstream presented no certificate; {check}")
        }
        rustls::Error::PeerIncompatible(_) => format!(
            "the upstream and the gateway have no TLS version or cipher suite in common (the gateway speaks TLS 1.2 \
             and 1.3 with current ciphers): update the upstream's TLS settings; {check}"
        ),
        rustls::Error::AlertReceived(alert) => refused(*alert, host),
        rustls::Error::PeerMisbehaved(_) | rustls::Error::DecryptError => {
            format!("the upstream broke the TLS protocol during the handshake; {check}")
        }
        _ => format!("the TLS handshake with the upstream failed; {check}"),
    }
}

/// What was wrong with the upstream's certificate.
fn certificate(problem: &CertificateError, host: &str, port: u16) -> String {
    let show = format!("openssl s_client -connect {host}:{port} -servername {host} -showcerts");
    match problem {
        CertificateError::UnknownIssuer => format!(
            "the upstream's certificate is not signed by a CA the gateway trusts: set the API's ca_file to a PEM file \
             with that CA, or with the certificate itself if it is self-signed (`{show}` prints it)"
        ),
        CertificateError::NotValidForName => format!(
            "the upstream's certificate is not valid for the name {host}: use a host name it lists in the endpoint, \
             or reissue it with -addext subjectAltName=DNS:{host}"
        ),
        CertificateError::NotValidForNameContext { presented, .. } => format!(
            "the upstream's certificate is not valid for the name {host} (it names {}): use one of those names in \
             the endpoint, or reissue it with -addext subjectAltName=DNS:{host}",
            names(presented)
        ),
        CertificateError::Expired => {
            "the upstream's certificate has expired: renew it (for example openssl req -x509 … -days 365)".into()
        }
        CertificateError::ExpiredContext { time, not_after } => format!(
            "the upstream's certificate expired {} ago: renew it (for example openssl req -x509 … -days 365)",
            span(*not_after, *time)
        ),
        CertificateError::NotValidYet => {
            "the upstream's certificate is not valid yet: check the clocks of the upstream and the gateway".into()
        }
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "the upstream's certificate is valid only in {}: check the clocks of the upstream and the gateway",
            span(*time, *not_before)
        ),
        CertificateError::Revoked => "the upstream's certificate was revoked: the upstream needs a new one".into(),
        CertificateError::BadEncoding => {
            format!("the upstream sent a certificate that cannot be parsed; look at it with `{show}`")
        }
        CertificateError::BadSignature => {
            format!("a signature in the upstream's certificate chain does not verify; look at it with `{show}`")
        }
        CertificateError::Other(other) if is_ca_used_as_end_entity(other) => {
            "the upstream presents a CA certificate (CA:TRUE, what openssl req -x509 makes by default) as its own: \
             put that very certificate in the API's ca_file to pin it, or give the upstream a certificate signed by \
             a CA"
                .into()
        }
        _ => format!("the gateway cannot accept the upstream's certificate; look at it with `{show}`"),
    }
}

/// The names a certificate lists, from webpki's `DnsName("a.example")` / `IpAddress(10.0.0.1)`.
fn names(presented: &[String]) -> String {
    let readable: Vec<&str> = presented
        .iter()
        .filter_map(|name| {
            let dns = name.strip_prefix("DnsName(\"").and_then(|rest| rest.strip_suffix("\")"));
            dns.or_else(|| name.strip_prefix("IpAddress(").and_then(|rest| rest.strip_suffix(')')))
        })
        .collect();
    if readable.is_empty() { "no host name at all".into() } else { readable.join(", ") }
}

/// The webpki error behind a `CertificateError::Other`, matched by type.
fn is_ca_used_as_end_entity(other: &rustls::OtherError) -> bool {
    other.0.downcast_ref::<webpki::Error>().is_some_and(|err| matches!(err, webpki::Error::CaUsedAsEndEntity))
}

/// The upstream ended the handshake with an alert.
fn refused(alert: AlertDescription, host: &str) -> String {
    let hint = match alert {
        AlertDescription::CertificateRequired | AlertDescription::HandshakeFailure => {
            ": if it asks for a client certificate, set the API's client_cert and client_key"
        }
        AlertDescription::UnrecognisedName => ": it does not serve the name the endpoint uses; check the host name",
        AlertDescription::ProtocolVersion => ": it does not speak TLS 1.2 or 1.3",
        AlertDescription::BadCertificate | AlertDescription::UnknownCA | AlertDescription::AccessDenied => {
            ": it did not accept the gateway's client certificate (client_cert)"
        }
        _ => "",
    };
    let name = match alert {
        AlertDescription::CertificateRequired => "certificate required".to_string(),
        AlertDescription::HandshakeFailure => "handshake failure".to_string(),
        AlertDescription::UnrecognisedName => "unrecognised name".to_string(),
        AlertDescription::ProtocolVersion => "protocol version".to_string(),
        AlertDescription::BadCertificate => "bad certificate".to_string(),
        AlertDescription::UnknownCA => "unknown CA".to_string(),
        AlertDescription::AccessDenied => "access denied".to_string(),
        AlertDescription::InternalError => "internal error".to_string(),
        other => format!("number {}", u8::from(other)),
    };
    format!("the upstream {host} refused the TLS handshake (alert: {name}){hint}")
}

/// The time from `from` to `to`, roughly, in words.
fn span(from: UnixTime, to: UnixTime) -> String {
    let seconds = to.as_secs().saturating_sub(from.as_secs());
    match seconds {
        0..120 => format!("{seconds} seconds"),
        120..7_200 => format!("{} minutes", seconds / 60),
        7_200..172_800 => format!("{} hours", seconds / 3_600),
        _ => format!("{} days", seconds / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn wrapped(error: rustls::Error) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, error)
    }

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(secs))
    }

    #[test]
    fn certificate_problems_read_as_sentences_with_their_fix() {
        let ca_as_leaf = CertificateError::Other(rustls::OtherError(Arc::new(webpki::Error::CaUsedAsEndEntity)));
        let cases = [
            (CertificateError::UnknownIssuer, "set the API's ca_file"),
            (
                CertificateError::NotValidForNameContext {
                    expected: rustls::pki_types::ServerName::try_from("localhost").expect("name"),
                    presented: vec!["DnsName(\"other.example\")".into()],
                },
                "(it names other.example): use one of those names",
            ),
            (CertificateError::ExpiredContext { time: at(10 * 86_400), not_after: at(86_400) }, "expired 9 days ago"),
            (ca_as_leaf, "put that very certificate in the API's ca_file"),
        ];
        for (problem, wanted) in cases {
            let sentence = describe(&wrapped(rustls::Error::InvalidCertificate(problem)), "localhost", 8443);
            assert!(sentence.contains(wanted), "{sentence}");
            assert!(!sentence.contains("Other(") && !sentence.contains("Error"), "no debug text: {sentence}");
        }
    }

    #[test]
    fn a_plain_upstream_and_a_closed_connection_are_told_apart() {
        let plain =
            describe(&wrapped(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)), "echo", 80);
        assert!(plain.contains("make the endpoint ws://"), "{plain}");
        let closed = describe(&std::io::Error::from(std::io::ErrorKind::UnexpectedEof), "echo", 443);
        assert!(closed.contains("closed the connection during the TLS handshake"), "{closed}");
    }
}

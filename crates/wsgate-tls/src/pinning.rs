//! Trusting an upstream through an API's CA bundle, including the certificate itself.
//!
//! `openssl req -x509` makes a self-signed certificate with `basicConstraints CA:TRUE`, and
//! that is how most people make one for a test or internal upstream. webpki refuses a CA
//! certificate presented as a server's own (`CaUsedAsEndEntity`) even when it is the very
//! certificate the bundle trusts, where nginx and HAProxy accept it. So: when the bundle holds
//! the exact certificate (byte for byte) the upstream presents, it is trusted as pinned, and
//! only what pinning cannot vouch for is checked: the name the gateway asked for and the
//! validity period. The TLS handshake still proves the upstream holds the certificate's key.
//! Any other certificate goes through webpki's usual path building against the bundle.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Verifies server certificates against a CA bundle whose members are also pinned.
#[derive(Debug)]
pub struct BundleVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    /// Every certificate of the bundle, DER, compared byte for byte with the presented leaf.
    pinned: Vec<CertificateDer<'static>>,
}

impl BundleVerifier {
    pub fn new(bundle: Vec<CertificateDer<'static>>, roots: Arc<RootCertStore>) -> Result<Self, rustls::Error> {
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, crate::provider())
            .build()
            .map_err(|err| rustls::Error::General(err.to_string()))?;
        Ok(BundleVerifier { webpki, pinned: bundle })
    }
}

impl ServerCertVerifier for BundleVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        match verified {
            Err(_) if self.pinned.iter().any(|pinned| pinned.as_ref() == end_entity.as_ref()) => {
                check_pinned(end_entity, server_name, now)
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// What a pinned certificate must still satisfy: it names `server_name`, and `now` is inside
/// its validity period.
fn check_pinned(
    cert: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<ServerCertVerified, rustls::Error> {
    let parsed = ParsedCertificate::try_from(cert)?;
    verify_server_name(&parsed, server_name)?;
    let (not_before, not_after) = validity(cert.as_ref()).ok_or(CertificateError::BadEncoding)?;
    let time = now.as_secs();
    if time < not_before {
        let not_before = UnixTime::since_unix_epoch(std::time::Duration::from_secs(not_before));
        return Err(CertificateError::NotValidYetContext { time: now, not_before }.into());
    }
    if time > not_after {
        let not_after = UnixTime::since_unix_epoch(std::time::Duration::from_secs(not_after));
        return Err(CertificateError::ExpiredContext { time: now, not_after }.into());
    }
    Ok(ServerCertVerified::assertion())
}

/// `notBefore` and `notAfter` of a DER X.509 certificate, in unix seconds. Only the few
/// elements in front of the validity are walked (RFC 5280 section 4.1): version, serial
/// number, signature algorithm and issuer are skipped whole.
fn validity(der: &[u8]) -> Option<(u64, u64)> {
    let (_, certificate, _) = element(der).filter(|(tag, _, _)| *tag == SEQUENCE)?;
    let (_, tbs, _) = element(certificate).filter(|(tag, _, _)| *tag == SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&EXPLICIT_VERSION) {
        rest = element(rest)?.2;
    }
    for _skipped in ["serialNumber", "signature", "issuer"] {
        rest = element(rest)?.2;
    }
    let (_, validity, _) = element(rest).filter(|(tag, _, _)| *tag == SEQUENCE)?;
    let (tag, not_before, after) = element(validity)?;
    let not_before = time(tag, not_before)?;
    let (tag, not_after, _) = element(after)?;
    Some((not_before, time(tag, not_after)?))
}

const SEQUENCE: u8 = 0x30;
const EXPLICIT_VERSION: u8 = 0xA0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// One DER element: its tag, its contents and what follows it. Lengths up to four bytes.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes.iter().fold(0usize, |len, b| (len << 8) | usize::from(*b))
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// A UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), the
/// two forms RFC 5280 allows, as unix seconds.
fn time(tag: u8, text: &[u8]) -> Option<u64> {
    let digits = |range: std::ops::Range<usize>| -> Option<u64> {
        let part = text.get(range)?;
        part.iter().all(u8::is_ascii_digit).then(|| part.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
    };
    let (year, rest) = match (tag, text.len()) {
        (UTC_TIME, 13) => {
            let yy = digits(0..2)?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, 2)
        }
        (GENERALIZED_TIME, 15) => (digits(0..4)?, 4),
        _ => return None,
    };
    if text.last() != Some(&b'Z') {
        return None;
    }
    let field = |n: usize| digits(rest + 2 * n..rest + 2 * n + 2);
    let (month, day, hour, minute, second) = (field(0)?, field(1)?, field(2)?, field(3)?, field(4)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day)?;
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), for dates
/// from 1970 on.
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    let year = if month <= 2 { year.checked_sub(1)? } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    (era * 146_097 + day_of_era).checked_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().expect("a key");
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        params.self_signed(&key).expect("a certificate").der().to_vec()
    }

    #[test]
    fn the_validity_period_is_read_in_both_time_forms() {
        // 2020 is written as UTCTime, 2051 as GeneralizedTime (RFC 5280 section 4.1.2.5).
        let der = certificate((2020, 1, 1), (2051, 3, 1));
        assert_eq!(validity(&der), Some((1_577_836_800, 2_561_241_600)));
    }

    #[test]
    fn dates_become_unix_days() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2000, 3, 1), Some(11_017));
        assert_eq!(days_from_civil(2024, 2, 29), Some(19_782));
        assert_eq!(days_from_civil(1969, 12, 31), None);
    }

    #[test]
    fn broken_input_is_refused_not_misread() {
        let der = certificate((2020, 1, 1), (2030, 1, 1));
        for cut in [0, 1, 2, 10, 40, der.len() / 2] {
            assert_eq!(validity(&der[..cut]), None, "cut at {cut}");
        }
        assert_eq!(time(UTC_TIME, b"2001011200000Z"), None, "one digit short");
        assert_eq!(time(UTC_TIME, b"201301120000Z"), None, "month 13");
        assert_eq!(time(GENERALIZED_TIME, b"20200101000000+"), None, "not UTC");
    }
}

//! The value rules of request bodies, each refusal naming its field (422). Context, version and
//! endpoint follow the config file's rules exactly, so an API means the same from either side.

use wsgate_core::config::{AllowList, Endpoint};
use wsgate_core::version;

use crate::error::ApiError;

/// A display name (API, application): 1 to `max` characters as sent, no control characters,
/// not only spaces. Returns it trimmed.
pub fn display_name(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(required(field, ""));
    }
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be 1 to {max} characters without control characters"),
        ));
    }
    Ok(trimmed.to_string())
}

/// An identifier that appears in URLs and command lines (user and plan names).
pub fn identifier(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        return Err(required(field, ""));
    }
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._@".contains(&b));
    if !ok {
        return Err(ApiError::invalid(
            field,
            format!("\"{value}\" must be 1-64 letters, digits, '-', '.', '_' or '@'"),
        ));
    }
    Ok(())
}

/// The refusal of an empty required field: "Context is required", not `"" must start with
/// '/'`. `example` follows it when given.
pub fn required(field: &str, example: &str) -> ApiError {
    let mut label = field.replace('_', " ");
    if let Some(first) = label.get(..1) {
        label.replace_range(..1, &first.to_ascii_uppercase());
    }
    let example = if example.is_empty() { String::new() } else { format!(" (e.g. {example})") };
    ApiError::invalid(field, format!("{label} is required{example}"))
}

/// The shortest and longest password, in characters.
pub const PASSWORD_LENGTH: std::ops::RangeInclusive<usize> = 8..=256;

/// The most common passwords of 8 characters or more (the first 5,000 of the list Django's
/// `CommonPasswordValidator` ships, BSD-3-Clause, compiled by Royce Williams from breach
/// corpora), lower-cased, one per line.
const COMMON_PASSWORDS: &str = include_str!("../common_passwords.txt");

/// NIST SP 800-63B, section 5.1.1.2: at least 8 characters and at most 256 (so a passphrase
/// fits), any characters, no composition rules; refused when it is a commonly used password
/// or the account's own name (or the product's). Compared case-insensitively.
pub fn password(value: &str, user: &str) -> Result<(), ApiError> {
    let length = value.chars().count();
    if !PASSWORD_LENGTH.contains(&length) {
        return Err(ApiError::invalid(
            "password",
            format!("password must be {} to {} characters", PASSWORD_LENGTH.start(), PASSWORD_LENGTH.end()),
        ));
    }
    let lower = value.to_lowercase();
    if lower == user.to_lowercase() || lower.starts_with("wsgate") && lower.len() <= "wsgate".len() + 4 {
        return Err(ApiError::invalid("password", "password must not be the user name or the product's name"));
    }
    if COMMON_PASSWORDS.lines().any(|common| common == lower) {
        return Err(ApiError::invalid(
            "password",
            "this password is one of the most commonly used ones, which attackers try first; choose another",
        ));
    }
    Ok(())
}

/// `/segment[/segment…]` with URL-safe segments and no trailing slash, as in the config file.
pub fn context(value: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        return Err(required("context", "/echowebsocket"));
    }
    let problem = |what: &str| Err(ApiError::invalid("context", format!("\"{value}\" {what}")));
    let Some(rest) = value.strip_prefix('/') else {
        return problem("must start with '/' (e.g. /echowebsocket)");
    };
    if rest.is_empty() || value.len() > 200 {
        return problem("must name 1 to 200 characters of path");
    }
    let segment_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !rest.split('/').all(segment_ok) {
        return problem("must be '/'-separated segments of letters, digits, '-', '.', '_' or '~' (no trailing '/')");
    }
    Ok(())
}

pub fn version(value: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        return Err(required("version", "1.0"));
    }
    if !version::is_valid(value) {
        return Err(ApiError::invalid("version", format!("\"{value}\" must be 1-64 letters, digits, '.', '-' or '_'")));
    }
    Ok(())
}

/// Each endpoint parses as a `ws://` or `wss://` URL and, unless `allowlist` is `None` (an
/// admin's API), points where `control.endpoint_allowlist` allows; the field names the index
/// at fault.
pub fn endpoints(values: &[String], allowlist: Option<&AllowList>) -> Result<(), ApiError> {
    for (i, url) in values.iter().enumerate() {
        let endpoint = Endpoint::parse(url).map_err(|problem| ApiError::invalid(format!("endpoints[{i}]"), problem))?;
        if allowlist.is_some_and(|list| !list.allows(&endpoint)) {
            return Err(ApiError::invalid(
                format!("endpoints[{i}]"),
                format!(
                    "{} is not in control.endpoint_allowlist: ask an admin to add it, or to create the API",
                    endpoint.authority()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_follow_the_config_rules() {
        assert!(context("/echowebsocket").is_ok());
        assert!(context("/a/b-c.d_e~f").is_ok());
        for bad in ["echo", "/", "/a/", "/a//b", "/a b", "/a?b"] {
            assert!(context(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn empty_required_fields_say_so() {
        let message = |result: Result<(), ApiError>| result.err().map(|err| err.to_string()).unwrap_or_default();
        assert_eq!(message(context("")), "Context is required (e.g. /echowebsocket)");
        assert_eq!(message(version("")), "Version is required (e.g. 1.0)");
        assert_eq!(message(display_name("name", " ", 100).map(|_| ())), "Name is required");
        assert_eq!(message(identifier("username", "")), "Username is required");
        assert!(message(endpoints(&[String::new()], None)).starts_with("An endpoint is required"));
    }

    #[test]
    fn endpoints_must_be_websocket_urls() {
        assert!(endpoints(&["ws://127.0.0.1:7070".into(), "wss://echo.example/x".into()], None).is_ok());
        match endpoints(&["ws://ok".into(), "http://127.0.0.1".into()], None) {
            Err(ApiError::InvalidValue { field, .. }) => assert_eq!(field, "endpoints[1]"),
            other => panic!("{other:?}"),
        }
        let list = AllowList::parse(&["*.internal".into()]).expect("list");
        assert!(endpoints(&["ws://echo.internal".into()], Some(&list)).is_ok());
        assert!(endpoints(&["ws://169.254.169.254/".into()], Some(&list)).is_err());
        assert!(endpoints(&["ws://169.254.169.254/".into()], None).is_ok(), "an admin's API is not listed");
    }

    #[test]
    fn passwords_follow_nist_800_63b() {
        assert!(password("correct horse battery", "alice").is_ok());
        assert!(password("Tr0ub4dor&3", "alice").is_ok(), "no composition rules either way");
        for weak in ["1234567", "12345678", "password", "Password1", "iloveyou", "alice-sm", "wsgate12"] {
            let user = if weak == "alice-sm" { "Alice-SM" } else { "alice" };
            assert!(password(weak, user).is_err(), "{weak} should be refused");
        }
        assert!(password(&"x".repeat(257), "alice").is_err());
        assert!(password(&"é".repeat(256), "alice").is_ok(), "characters, not bytes");
    }
}

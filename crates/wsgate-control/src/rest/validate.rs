//! The value rules of request bodies, each refusal naming its field (422). Context, version and
//! endpoint follow the config file's rules exactly, so an API means the same from either side.

use wsgate_core::config::Endpoint;
use wsgate_core::version;

use crate::error::ApiError;

/// A display name (API, application): 1 to `max` characters after trimming, no control
/// characters. Returns it trimmed.
pub fn display_name(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > max || trimmed.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be 1 to {max} characters without control characters"),
        ));
    }
    Ok(trimmed.to_string())
}

/// An identifier that appears in URLs and command lines (user and plan names).
pub fn identifier(field: &str, value: &str) -> Result<(), ApiError> {
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

/// Passwords are long enough to resist guessing; anything else is the user's choice.
pub fn password(value: &str) -> Result<(), ApiError> {
    if value.chars().count() < 8 || value.len() > 1024 {
        return Err(ApiError::invalid("password", "password must be 8 to 1024 characters"));
    }
    Ok(())
}

/// `/segment[/segment…]` with URL-safe segments and no trailing slash, as in the config file.
pub fn context(value: &str) -> Result<(), ApiError> {
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
    if !version::is_valid(value) {
        return Err(ApiError::invalid("version", format!("\"{value}\" must be 1-64 letters, digits, '.', '-' or '_'")));
    }
    Ok(())
}

/// Each endpoint parses as a `ws://` or `wss://` URL; the field names the index at fault.
pub fn endpoints(values: &[String]) -> Result<(), ApiError> {
    for (i, url) in values.iter().enumerate() {
        Endpoint::parse(url).map_err(|problem| ApiError::invalid(format!("endpoints[{i}]"), problem))?;
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
    fn endpoints_must_be_websocket_urls() {
        assert!(endpoints(&["ws://127.0.0.1:7070".into(), "wss://echo.example/x".into()]).is_ok());
        match endpoints(&["ws://ok".into(), "http://127.0.0.1".into()]) {
            Err(ApiError::InvalidValue { field, .. }) => assert_eq!(field, "endpoints[1]"),
            other => panic!("{other:?}"),
        }
    }
}

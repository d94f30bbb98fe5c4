//! The value rules of request bodies, each refusal naming its field (422). Context, version and
//! endpoint follow the config file's rules exactly, so an API means the same from either side.

use serde_json::Value;
use wsgate_core::config::{AllowList, Endpoint};
use wsgate_core::upstream::{self, EndpointSettings};
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

/// The duration fields of `endpoint_settings`, by path. The REST API takes exactly
/// `<1-9 digits><ms|s|m|h|d>` there (the OpenAPI pattern), stricter than the config file's
/// parser (which trims spaces and takes longer numbers), so the document and the server agree.
const DURATIONS: [&[&str]; 12] = [
    &["connect_timeout"],
    &["upstream_handshake_timeout"],
    &["idle_timeout"],
    &["close_timeout"],
    &["max_lifetime"],
    &["ping_interval"],
    &["ping_timeout"],
    &["breaker", "window"],
    &["breaker", "cool_down"],
    &["breaker", "max_cool_down"],
    &["probe", "interval"],
    &["probe", "timeout"],
];

/// Whether `text` is a duration as the REST API writes it: 1-9 digits and a unit.
pub fn duration_text(text: &str) -> bool {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    (1..=9).contains(&digits) && ["ms", "s", "m", "h", "d"].contains(&&text[digits..])
}

/// `endpoint_settings` as a request sends it (`null`: every default), checked for an API with
/// `endpoints` endpoints. A wrong shape is a 400 and a wrong value a 422, each naming the field
/// as `endpoint_settings.breaker.window`.
pub fn endpoint_settings(value: &Value, endpoints: usize) -> Result<EndpointSettings, ApiError> {
    if value.is_null() {
        return Ok(EndpointSettings::default());
    }
    // serde would also read a struct from a JSON array, by position: the document says object.
    let not_object = |field: &str| ApiError::MalformedBody {
        message: format!("{field}: invalid type: expected an object"),
        field: Some(field.to_string()),
    };
    if !value.is_object() {
        return Err(not_object("endpoint_settings"));
    }
    for (key, nullable) in [("breaker", false), ("probe", true)] {
        match value.get(key) {
            None | Some(Value::Object(_)) => {}
            Some(Value::Null) if nullable => {}
            Some(_) => return Err(not_object(&format!("endpoint_settings.{key}"))),
        }
    }
    for path in DURATIONS {
        let found = path.iter().try_fold(value, |at, key| at.get(key));
        if let Some(Value::String(text)) = found
            && !duration_text(text)
        {
            let field = format!("endpoint_settings.{}", path.join("."));
            return Err(ApiError::invalid(
                field.clone(),
                format!("{field}: \"{text}\" is not a duration like 250ms, 10s, 5m, 1h or 7d"),
            ));
        }
    }
    let settings: EndpointSettings = super::extract::parse(value.to_string().as_bytes()).map_err(|err| match err {
        // `parse` words a named field's problem as "<field>: <problem>".
        ApiError::MalformedBody { message, field: Some(field) } => ApiError::MalformedBody {
            message: format!("endpoint_settings.{message}"),
            field: Some(format!("endpoint_settings.{field}")),
        },
        ApiError::MalformedBody { message, field: None } => ApiError::MalformedBody {
            message: format!("endpoint_settings: {message}"),
            field: Some("endpoint_settings".into()),
        },
        other => other,
    })?;
    settings_fit(&settings, endpoints)?;
    Ok(settings)
}

/// Checks settings for an API with `endpoints` endpoints, naming the field at fault.
pub fn settings_fit(settings: &EndpointSettings, endpoints: usize) -> Result<(), ApiError> {
    settings.check(endpoints).map_err(|(field, problem)| {
        let field = format!("endpoint_settings.{field}");
        ApiError::invalid(field.clone(), format!("{field}: {problem}"))
    })
}

/// The most origins one API lists.
pub const MAX_ORIGINS: usize = 100;

/// An `allowed_origins` list: each `scheme://host[:port]` or `null`; the field names the index.
pub fn allowed_origins(origins: &[String]) -> Result<(), ApiError> {
    if origins.len() > MAX_ORIGINS {
        return Err(ApiError::invalid(
            "allowed_origins",
            format!("allowed_origins: at most {MAX_ORIGINS} origins (an empty list allows any origin)"),
        ));
    }
    upstream::check_origins(origins).map_err(|(index, problem)| {
        let field = format!("allowed_origins[{index}]");
        ApiError::invalid(field.clone(), format!("{field}: {problem}"))
    })
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

    #[test]
    fn endpoint_settings_name_their_field() {
        let refused = |value: Value, endpoints| match endpoint_settings(&value, endpoints) {
            Err(ApiError::InvalidValue { field, message }) => (422, field, message),
            Err(ApiError::MalformedBody { field, message }) => (400, field.unwrap_or_default(), message),
            other => panic!("{value}: {other:?}"),
        };
        let (status, field, message) = refused(serde_json::json!({"breaker": {"window": "0s"}}), 1);
        assert_eq!((status, field.as_str()), (422, "endpoint_settings.breaker.window"));
        assert!(message.starts_with("endpoint_settings.breaker.window: must be longer than 0"), "{message}");
        let (status, field, _) = refused(serde_json::json!({"connect_timeout": " 5s"}), 1);
        assert_eq!((status, field.as_str()), (422, "endpoint_settings.connect_timeout"));
        let (status, field, message) = refused(serde_json::json!({"probe": {"interval": 5}}), 1);
        assert_eq!((status, field.as_str()), (400, "endpoint_settings.probe.interval"), "{message}");
        assert!(message.starts_with("endpoint_settings.probe.interval: invalid type"), "{message}");
        let (status, field, _) = refused(serde_json::json!({"load_balancing": "random"}), 1);
        assert_eq!((status, field.as_str()), (400, "endpoint_settings.load_balancing"));
        let (status, field, message) = refused(serde_json::json!({"colour": "red"}), 1);
        assert_eq!((status, field.as_str()), (400, "endpoint_settings.colour"), "{message}");
        let (status, field, _) = refused(serde_json::json!([]), 1);
        assert_eq!((status, field.as_str()), (400, "endpoint_settings"));
        let (status, field, _) = refused(serde_json::json!({"breaker": []}), 1);
        assert_eq!((status, field.as_str()), (400, "endpoint_settings.breaker"));
        let (status, field, _) = refused(serde_json::json!({"probe": ["tcp"]}), 1);
        assert_eq!((status, field.as_str()), (400, "endpoint_settings.probe"));
        let (status, field, message) = refused(serde_json::json!({"weights": [3, 1]}), 3);
        assert_eq!((status, field.as_str()), (422, "endpoint_settings.weights"));
        assert!(message.contains("3 endpoints"), "{message}");
        let good = serde_json::json!({"connect_timeout": "250ms", "weights": [3, 1], "probe": {"kind": "websocket"}});
        let settings = endpoint_settings(&good, 2).expect("good settings");
        assert_eq!(settings.connect_timeout, Some(std::time::Duration::from_millis(250)));
        assert_eq!(endpoint_settings(&Value::Null, 2).expect("null"), EndpointSettings::default());
    }

    #[test]
    fn durations_are_written_exactly() {
        for good in ["1ms", "250ms", "10s", "5m", "1h", "7d", "999999999d"] {
            assert!(duration_text(good), "{good}");
        }
        for bad in ["", "5", "s", " 5s", "5s ", "5 s", "1000000000s", "5sec", "-5s", "5S"] {
            assert!(!duration_text(bad), "{bad}");
        }
    }

    #[test]
    fn origins_name_their_index() {
        assert!(allowed_origins(&["https://app.example.com".into(), "null".into()]).is_ok());
        match allowed_origins(&["https://a.example".into(), "a.example".into()]) {
            Err(ApiError::InvalidValue { field, .. }) => assert_eq!(field, "allowed_origins[1]"),
            other => panic!("{other:?}"),
        }
        let many: Vec<String> = (0..=MAX_ORIGINS).map(|i| format!("https://a{i}.example")).collect();
        assert!(allowed_origins(&many).is_err());
    }
}

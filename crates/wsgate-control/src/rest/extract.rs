//! Extractors whose refusals are ours: JSON bodies ([`Body`]) and query strings ([`Query`]).
//! axum's `Json` and `Query` say what went wrong but in their own format; these answer with
//! the REST API's error body, `field` naming the field at fault.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::limits::{MAX_BODY, read_body};

/// A JSON body of type `T`, at most [`MAX_BODY`] bytes (413 beyond). An empty body reads as
/// `{}`, so endpoints whose fields are all optional take a bodiless POST.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &S) -> Result<Body<T>, ApiError> {
        let (parts, body) = request.into_parts();
        let bytes = read_body(&parts.headers, body, MAX_BODY).await?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        parse(text).map(Body)
    }
}

/// A query string of type `T`.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Query<T>, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(ApiError::MalformedBody {
                message: format!("bad query string: {}", rejection.body_text()),
                field: None,
            }),
        }
    }
}

/// Parses `bytes` as `T`, naming the field at fault.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    if value.is_ok() {
        // Trailing garbage after the object is malformed JSON too.
        deserializer.end().map_err(|err| ApiError::MalformedBody {
            message: format!("the body is not valid JSON: {}", strip_position(&err.to_string())),
            field: None,
        })?;
    }
    value.map_err(|err| {
        let inner = err.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::MalformedBody {
                message: format!("the body is not valid JSON: {}", strip_position(&inner.to_string())),
                field: None,
            };
        }
        let path = err.path().to_string();
        let message = inner.to_string();
        // serde reports a missing field at the level of the object that lacks it; the field's
        // name is only in the message.
        let named = ["missing field `", "unknown field `"]
            .iter()
            .find_map(|prefix| message.strip_prefix(prefix))
            .and_then(|rest| rest.split('`').next())
            .map(|name| match path.as_str() {
                "." => name.to_string(),
                // An unknown field is already the last element of the path.
                _ if path == name || path.ends_with(&format!(".{name}")) => path.clone(),
                _ => format!("{path}.{name}"),
            });
        let field = named.or_else(|| (path != ".").then_some(path));
        let message = match &field {
            Some(field) => format!("{field}: {}", strip_position(&message)),
            None => strip_position(&message).to_string(),
        };
        ApiError::MalformedBody { message, field }
    })
}

/// serde_json appends " at line 1 column 17", noise to a REST client that sent one line.
fn strip_position(message: &str) -> &str {
    message.rfind(" at line ").map_or(message, |at| &message[..at])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        #[serde(default)]
        endpoints: Vec<String>,
    }

    fn refusal(text: &str) -> (String, Option<String>) {
        match parse::<Sample>(text.as_bytes()) {
            Err(ApiError::MalformedBody { message, field }) => (message, field),
            other => panic!("expected a malformed body, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(refusal("{}").1.as_deref(), Some("name"));
        assert_eq!(refusal(r#"{"name": 1}"#).1.as_deref(), Some("name"));
        assert_eq!(refusal(r#"{"name": "a", "endpoints": [1]}"#).1.as_deref(), Some("endpoints[0]"));
        assert_eq!(refusal(r#"{"name": "a", "plan": "Gold"}"#).1.as_deref(), Some("plan"));
        let (message, field) = refusal(r#"{"name": "#);
        assert!(message.starts_with("the body is not valid JSON"), "{message}");
        assert_eq!(field, None);
        assert!(refusal(r#"{"name": "a"} x"#).0.starts_with("the body is not valid JSON"));
        assert!(refusal(r#"{"name": 1}"#).0.starts_with("name: invalid type"));
    }
}

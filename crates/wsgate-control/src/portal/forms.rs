//! Form bodies as the portals read them, the problems a submission can have (each attached to
//! the field it concerns), and the `next` paths a sign-in may return to.

use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::limits;

/// An `application/x-www-form-urlencoded` body, kept as its pairs: checkboxes and repeated
/// inputs (plans, endpoints) send one pair per value, which a struct cannot hold.
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = Response;

    /// At most `limits::MAX_BODY` bytes and `limits::MAX_FORM_PAIRS` fields, in one pass.
    /// Only a hand-made request is refused; browsers send what the page's form says.
    async fn from_request(request: Request, _: &S) -> Result<Form, Response> {
        let (parts, body) = request.into_parts();
        let read = limits::read_body(&parts.headers, body, limits::MAX_BODY).await;
        match read.and_then(|bytes| limits::form_pairs(&bytes)) {
            Ok(pairs) => Ok(Form { pairs }),
            Err(err) => Err(ApiError::Body(err).into_response()),
        }
    }
}

impl Form {
    /// The first value of `name`, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.pairs.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.trim())
    }

    /// The first value of `name` exactly as sent (passwords keep their spaces).
    pub fn raw(&self, name: &str) -> &str {
        self.pairs.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }

    /// Every non-empty value of `name`, trimmed, in page order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    /// Every value of `name`, trimmed, empty ones included: inputs that pair up with a list by
    /// position (one weight per endpoint).
    pub fn every(&self, name: &str) -> Vec<String> {
        self.pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.trim().to_string()).collect()
    }

    /// Whether a checkbox named `name` was ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }
}

/// What was wrong with a submission: messages per field, and messages about the whole form.
#[derive(Debug, Default)]
pub struct Problems {
    fields: Vec<(String, String)>,
    general: Vec<String>,
}

impl Problems {
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.general.is_empty()
    }

    /// Records a message for `field`, keeping only the first one per field.
    pub fn field(&mut self, field: impl Into<String>, message: impl Into<String>) {
        let field = field.into();
        if self.on(&field).is_none() {
            self.fields.push((field, message.into()));
        }
    }

    pub fn general(&mut self, message: impl Into<String>) {
        self.general.push(message.into());
    }

    /// The message for `field`, if any.
    pub fn on(&self, field: &str) -> Option<&str> {
        self.fields.iter().find(|(f, _)| f == field).map(|(_, m)| m.as_str())
    }

    /// Form-level messages as alert HTML, plus a summary when fields have messages, so a
    /// keyboard or screen-reader user learns at the top that something below needs fixing.
    pub fn summary(&self) -> String {
        let mut html: String = self.general.iter().map(|m| super::html::alert(m)).collect();
        if !self.fields.is_empty() {
            let n = self.fields.len();
            let what = if n == 1 { "One field needs" } else { "Some fields need" };
            html.push_str(&super::html::alert(&format!("{what} your attention: see the messages below.")));
        }
        html
    }

    /// Files a REST refusal under the form field it names. REST names list items by index
    /// (`plans[1]`, `scopes[0]`); the portal's forms show those lists as one field, except
    /// endpoints, which have one input each.
    pub fn from_api(err: ApiError) -> Problems {
        let mut problems = Problems::default();
        problems.add_api(err);
        problems
    }

    pub fn add_api(&mut self, err: ApiError) {
        let message = err.to_string();
        let field = match err {
            ApiError::InvalidValue { field, .. } => Some(field),
            ApiError::MalformedBody { field, .. } => field,
            ApiError::NotFound { field, .. } => field.map(str::to_string),
            _ => None,
        };
        match field {
            Some(field) if field.starts_with("endpoints[") => self.field(field, message),
            Some(field) => {
                let base = field.split('[').next().unwrap_or(&field).to_string();
                self.field(base, message);
            }
            None => self.general(message),
        }
    }
}

/// A path a sign-in may send the browser back to: one of this portal's own pages. Anything
/// else (another site, `//host`, a backslash trick) falls back to the portal's home, so the
/// sign-in page cannot be used to redirect to another site.
pub fn safe_next(next: Option<&str>, base: &str) -> String {
    match next {
        Some(path)
            if (path == base || path.starts_with(&format!("{base}/")) || path.starts_with(&format!("{base}?")))
                && !path.contains("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path.to_string()
        }
        _ => base.to_string(),
    }
}

/// Percent-encodes a query value (everything but unreserved characters and `/`).
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Compares two strings in time that depends on their lengths only, for CSRF tokens.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_inside_the_portal() {
        assert_eq!(safe_next(Some("/devportal/apis/x"), "/devportal"), "/devportal/apis/x");
        assert_eq!(safe_next(Some("/devportal?q=echo"), "/devportal"), "/devportal?q=echo");
        for bad in
            ["https://evil.example/", "//evil.example", "/devportal//evil", "/devportalx", "/publisher", "/\\evil"]
        {
            assert_eq!(safe_next(Some(bad), "/devportal"), "/devportal", "{bad}");
        }
        assert_eq!(safe_next(None, "/publisher"), "/publisher");
    }

    #[test]
    fn api_refusals_land_on_their_fields() {
        let problems = Problems::from_api(ApiError::invalid("plans[1]", "no such plan"));
        assert_eq!(problems.on("plans"), Some("no such plan"));
        let problems = Problems::from_api(ApiError::invalid("endpoints[2]", "bad scheme"));
        assert_eq!(problems.on("endpoints[2]"), Some("bad scheme"));
        let problems = Problems::from_api(ApiError::Conflict("taken".into()));
        assert!(problems.summary().contains("taken"));
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
    }
}

//! The page layout both portals share, the one escaping function, the fixed notices shown after
//! a redirect, and the error pages.
//!
//! Pages are built with `format!`. Anything that did not come from this source file (names,
//! URLs, messages from validation, tokens) goes through [`esc`] on its way in; helpers here
//! take plain text and escape it themselves, and return HTML.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Which portal a page belongs to: its base path, its name and its navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Publisher,
    Devportal,
}

impl Area {
    pub fn base(self) -> &'static str {
        match self {
            Area::Publisher => "/publisher",
            Area::Devportal => "/devportal",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Area::Publisher => "Publisher",
            Area::Devportal => "Developer Portal",
        }
    }

    /// Links as (href, label, for admins only).
    fn nav(self) -> &'static [(&'static str, &'static str, bool)] {
        match self {
            Area::Publisher => &[
                ("/publisher", "APIs", false),
                ("/publisher/plans", "Business plans", false),
                ("/publisher/nodes", "Nodes", true),
                ("/devportal", "Developer Portal", false),
            ],
            Area::Devportal => &[("/devportal", "APIs", false), ("/devportal/applications", "Applications", false)],
        }
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Who the page header shows.
pub enum Viewer<'a> {
    /// A signed-in user, with the CSRF token of the sign-out form; admins see admin-only links.
    User { name: &'a str, csrf: &'a str, admin: bool },
    /// A visitor browsing the developer portal without an account (`control.anonymous_browsing`),
    /// offered to sign in and come back to `back`, or to create an account when `signup` is open.
    Visitor { back: &'a str, signup: bool },
}

/// One page: `body` is HTML, everything else plain text.
pub struct Page<'a> {
    pub area: Area,
    pub title: &'a str,
    pub viewer: Option<Viewer<'a>>,
    pub notice: Option<Notice>,
    pub body: String,
}

impl Page<'_> {
    pub fn render(self, status: StatusCode) -> Response {
        let Page { area, title, viewer, notice, body } = self;
        let base = area.base();
        let links = |items: &[(&str, &str, bool)], admin: bool| -> String {
            let shown = items.iter().filter(|(_, _, admins_only)| admin || !admins_only);
            shown.map(|(href, label, _)| format!(r#"<a href="{href}">{label}</a>"#)).collect()
        };
        let nav = match viewer {
            Some(Viewer::User { admin, .. }) => links(area.nav(), admin),
            // A visitor sees what needs no account.
            Some(Viewer::Visitor { .. }) => links(&area.nav()[..1], false),
            None => String::new(),
        };
        let who = match &viewer {
            Some(Viewer::User { name, csrf, .. }) => format!(
                r#"<div class="who"><span>Signed in as <strong>{name}</strong></span>
<form method="post" action="{base}/logout">{csrf}<button type="submit" class="link">Sign out</button></form></div>"#,
                name = esc(name),
                csrf = csrf_input(csrf),
            ),
            Some(Viewer::Visitor { back, signup }) => format!(
                r#"<div class="who"><a class="button primary" href="{base}/login?next={next}">Sign in</a>{signup}</div>"#,
                next = esc(&super::forms::encode(back)),
                signup = if *signup { r#" <a href="/devportal/signup">Create an account</a>"# } else { "" },
            ),
            None => String::new(),
        };
        let notice = notice.map(Notice::render).unwrap_or_default();
        let html = format!(
            r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · wsgate {label}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/portal-assets/portal.css">
<script src="/portal-assets/portal.js" defer></script>
</head>
<body class="{class}">
<a class="skip" href="#main">Skip to content</a>
<header class="bar"><div class="bar-inner">
<a class="brand" href="{base}">wsgate <span>{label}</span></a>
<nav aria-label="Main">{nav}</nav>
{who}
</div></header>
<main id="main" tabindex="-1">
{notice}<h1>{title}</h1>
{body}
</main>
</body>
</html>
"##,
            title = esc(title),
            label = area.label(),
            class = if area == Area::Publisher { "publisher" } else { "devportal" },
        );
        (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
    }
}

/// The hidden field every form carries.
pub fn csrf_input(token: &str) -> String {
    format!(r#"<input type="hidden" name="csrf" value="{}">"#, esc(token))
}

/// A message shown once after a redirect. Only these fixed texts can be asked for in a query
/// string, so a link cannot make a portal page say something of the linker's choosing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    SessionExpired,
    SignInFirst,
    SignedOut,
    Welcome,
    AccountRequested,
    ApiCreated,
    ApiPublished,
    ApiSaved,
    EndpointsSaved,
    ApiMoved,
    ApiDeleted,
    ApplicationCreated,
    ApplicationDeleted,
    Unsubscribed,
    PlanSaved,
    PlanDeleted,
    PlanChanged,
}

const NOTICES: &[(Notice, &str, &str)] = &[
    (Notice::SessionExpired, "expired", "Your session has expired. Please sign in again."),
    (Notice::SignInFirst, "signin", "Please sign in to continue."),
    (Notice::SignedOut, "signedout", "You are signed out."),
    (Notice::Welcome, "welcome", "Welcome! Your account is ready. Pick an API to subscribe to."),
    (Notice::AccountRequested, "account", "If that name was free, your account exists now: sign in with it."),
    (Notice::ApiCreated, "created", "The API was created. Publish it from the Lifecycle page when it is ready."),
    (Notice::ApiPublished, "published", "The API was created and published: it is in the Developer Portal now."),
    (Notice::ApiSaved, "saved", "The configuration was saved."),
    (
        Notice::EndpointsSaved,
        "endpointssaved",
        "The endpoint settings were saved. New connections follow them within a second.",
    ),
    (Notice::ApiMoved, "moved", "The lifecycle state was changed."),
    (Notice::ApiDeleted, "deleted", "The API was deleted."),
    (Notice::ApplicationCreated, "appcreated", "The application was created."),
    (Notice::ApplicationDeleted, "appdeleted", "The application was deleted."),
    (Notice::Unsubscribed, "unsubscribed", "The subscription was removed."),
    (Notice::PlanSaved, "plansaved", "The plan was saved. Live connections follow it within a second."),
    (Notice::PlanDeleted, "plandeleted", "The plan was deleted."),
    (
        Notice::PlanChanged,
        "planchanged",
        "The subscription's plan was changed. Live connections follow it within a second.",
    ),
];

impl Notice {
    pub fn code(self) -> &'static str {
        NOTICES.iter().find(|(n, _, _)| *n == self).map_or("", |(_, code, _)| code)
    }

    pub fn parse(code: &str) -> Option<Notice> {
        NOTICES.iter().find(|(_, c, _)| *c == code).map(|(n, _, _)| *n)
    }

    fn text(self) -> &'static str {
        NOTICES.iter().find(|(n, _, _)| *n == self).map_or("", |(_, _, text)| text)
    }

    fn render(self) -> String {
        let kind = match self {
            Notice::SessionExpired | Notice::SignInFirst => "warn",
            _ => "ok",
        };
        format!(r#"<p class="notice {kind}" role="status">{}</p>"#, self.text())
    }
}

/// A problem that concerns the whole form rather than one field (a conflict, a refusal).
pub fn alert(message: &str) -> String {
    format!(r#"<div class="notice error" role="alert">{}</div>"#, esc(message))
}

/// A page that says why the request cannot be served, with a way on.
pub fn error_page(area: Area, viewer: Option<Viewer<'_>>, status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        r#"<p class="lead">{}</p>
<p><a class="button" href="{}">Back to the {}</a></p>"#,
        esc(message),
        area.base(),
        area.label(),
    );
    Page { area, title, viewer, notice: None, body }.render(status)
}

/// `303 See Other`: after a form, the browser GETs the next page, so reloading it does not
/// post the form again.
pub fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location.to_string())]).into_response()
}

/// A labelled text input with its hint and, when the last submission was refused, the
/// message next to it (linked with `aria-describedby`, so screen readers read it too).
pub fn text_field(name: &str, label: &str, value: &str, hint: &str, problem: Option<&str>, extra: &str) -> String {
    let id = format!("f-{}", name.replace(['[', ']'], "-"));
    let mut described = Vec::new();
    let hint_html = if hint.is_empty() {
        String::new()
    } else {
        described.push(format!("{id}-hint"));
        format!(r#"<p class="hint" id="{id}-hint">{}</p>"#, esc(hint))
    };
    let problem_html = match problem {
        Some(message) => {
            described.push(format!("{id}-error"));
            format!(r#"<p class="field-error" id="{id}-error">{}</p>"#, esc(message))
        }
        None => String::new(),
    };
    let aria =
        if described.is_empty() { String::new() } else { format!(r#" aria-describedby="{}""#, described.join(" ")) };
    let invalid = if problem.is_some() { r#" aria-invalid="true""# } else { "" };
    format!(
        r#"<div class="field{cls}"><label for="{id}">{label}</label>
<input id="{id}" name="{name}" value="{value}"{aria}{invalid} {extra}>{hint_html}{problem_html}</div>"#,
        cls = if problem.is_some() { " has-error" } else { "" },
        label = esc(label),
        name = esc(name),
        value = esc(value),
    )
}

/// A status badge (`PUBLISHED`, `ACTIVE`, …), coloured by CSS class.
pub fn badge(text: &str) -> String {
    format!(r#"<span class="badge badge-{}">{}</span>"#, esc(&text.to_ascii_lowercase()), esc(text))
}

/// A read-only value with a copy button (`portal.js` copies the element's text).
pub fn copyable(id: &str, label: &str, value: &str) -> String {
    format!(
        r#"<div class="copyable"><span class="copy-label" id="{id}-label">{label}</span>
<pre><code id="{id}" aria-labelledby="{id}-label">{value}</code></pre>
<button type="button" class="copy" data-copy="{id}">Copy</button></div>"#,
        label = esc(label),
        value = esc(value),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_both_quotes() {
        assert_eq!(esc(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }

    #[test]
    fn notices_round_trip_and_unknown_codes_say_nothing() {
        for (notice, code, _) in NOTICES {
            assert_eq!(Notice::parse(code), Some(*notice));
            assert_eq!(notice.code(), *code);
        }
        assert_eq!(Notice::parse("<script>"), None);
    }
}

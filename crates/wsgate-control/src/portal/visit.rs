//! Who is looking at a portal page. Pages take the session from the `wsgate_session` cookie
//! (the REST API's own sessions); forms also prove, with their hidden CSRF field, that they
//! were rendered by us for this session. A visitor without a live session is sent to sign in
//! and brought back afterwards; a signed-in user without the role gets a 403 page that says
//! which role the page needs.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use wsgate_core::model::Role;

use super::forms::{Form, encode};
use super::html::{Area, Notice, Page, Viewer, error_page, esc, see_other};
use crate::auth::{self, CSRF_HEADER, Caller};
use crate::error::ApiError;
use crate::state::AppState;

/// The signed-in caller of a page, or the redirect to sign in that replaces it.
pub async fn page(state: &AppState, headers: &HeaderMap, area: Area, back: &str) -> Result<Caller, Response> {
    auth::identify(state, &Method::GET, headers).await.map_err(|err| refused(headers, area, back, err))
}

/// The caller of a page anyone may browse when `control.anonymous_browsing` is on (the
/// developer portal's catalogue and API pages): `None` for a visitor without a live session,
/// who sees the page as it is for everyone. With the setting off, as [`page`].
pub async fn browse(state: &AppState, headers: &HeaderMap, area: Area, back: &str) -> Result<Option<Caller>, Response> {
    match auth::identify(state, &Method::GET, headers).await {
        Ok(caller) => Ok(Some(caller)),
        Err(ApiError::NotSignedIn) if state.settings.anonymous_browsing => Ok(None),
        Err(err) => Err(refused(headers, area, back, err)),
    }
}

/// The signed-in caller of a form submission whose CSRF field matches their session.
///
/// The field is checked by the same code as the REST API's `X-CSRF-Token` header: it is put
/// in that header of a copy of the request headers, so there is one check, not two.
pub async fn form(
    state: &AppState,
    headers: &HeaderMap,
    form: &Form,
    area: Area,
    back: &str,
) -> Result<Caller, Response> {
    let mut headers = headers.clone();
    headers.remove(CSRF_HEADER);
    if let Ok(value) = HeaderValue::from_str(form.get("csrf")) {
        headers.insert(CSRF_HEADER, value);
    }
    auth::identify(state, &Method::POST, &headers).await.map_err(|err| refused(&headers, area, back, err))
}

fn refused(headers: &HeaderMap, area: Area, back: &str, err: ApiError) -> Response {
    match err {
        ApiError::NotSignedIn => {
            // A cookie that no longer names a session is a session that ran out (or was
            // signed out elsewhere); no cookie at all is a first visit.
            let notice =
                if auth::session_cookie(headers).is_some() { Notice::SessionExpired } else { Notice::SignInFirst };
            sign_in_redirect(area, back, notice)
        }
        ApiError::CsrfTokenMismatch => error_page(
            area,
            None,
            StatusCode::FORBIDDEN,
            "This form has expired",
            "The form was not sent from a page of this session (it may be from before you signed in again, \
             or from another site). Go back, reload the page and submit it again.",
        ),
        other => error_page(area, None, other.status(), "Something went wrong", &other.to_string()),
    }
}

/// To the sign-in page, which comes back to `back` afterwards.
pub fn sign_in_redirect(area: Area, back: &str, notice: Notice) -> Response {
    see_other(&format!("{}/login?next={}&notice={}", area.base(), encode(back), notice.code()))
}

/// How the page header shows the caller.
pub fn viewer(caller: &Caller) -> Viewer<'_> {
    Viewer::User { name: caller.name(), csrf: &caller.csrf_token, admin: caller.is_admin() }
}

/// How the page header shows a caller who may be a visitor without an account.
pub fn viewer_or_visitor<'a>(state: &AppState, caller: Option<&'a Caller>, back: &'a str) -> Viewer<'a> {
    match caller {
        Some(caller) => viewer(caller),
        None => Viewer::Visitor { back, signup: state.settings.self_signup },
    }
}

/// The 403 page for a caller who is neither creator nor publisher (admins hold every role):
/// the publisher is not for them.
pub fn outside_publisher_area(caller: &Caller) -> Option<Response> {
    if caller.has(Role::Creator) || caller.has(Role::Publisher) {
        return None;
    }
    Some(forbidden(Area::Publisher, caller, "The publisher is for users with the creator or publisher role."))
}

/// The 403 page for a caller without `role`.
pub fn lacking(caller: &Caller, area: Area, role: Role) -> Option<Response> {
    if caller.has(role) {
        return None;
    }
    Some(forbidden(area, caller, &format!("This page needs the {} role.", role.as_str())))
}

/// The 403 page: what the page needs, what the caller has, and where they can go instead
/// (a subscriber who wandered into the publisher is pointed at the developer portal).
fn forbidden(area: Area, caller: &Caller, why: &str) -> Response {
    let roles: Vec<&str> = caller.user.roles.iter().map(|r| r.as_str()).collect();
    let (href, label) = match area {
        Area::Publisher => ("/devportal", "Go to the Developer Portal"),
        Area::Devportal => ("/devportal", "Back to the Developer Portal"),
    };
    let body = format!(
        r#"<p class="lead">{why}</p>
<p>You are signed in as <strong>{name}</strong> with the role(s) <strong>{roles}</strong>. Ask an admin for the
role, or sign out and sign in as another user.</p>
<p><a class="button" href="{href}">{label}</a></p>"#,
        why = esc(why),
        name = esc(caller.name()),
        roles = esc(&roles.join(", ")),
    );
    let page =
        Page { area, title: "403 · You may not open this page", viewer: Some(viewer(caller)), notice: None, body };
    page.render(StatusCode::FORBIDDEN)
}

/// A refusal of a REST handler while rendering or posting a page, as a page; `caller` is
/// `None` for a visitor without an account.
pub fn failure<'a>(area: Area, caller: impl Into<Option<&'a Caller>>, err: ApiError) -> Response {
    let caller = caller.into();
    let title = match err.status() {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "You may not do this",
        StatusCode::SERVICE_UNAVAILABLE => "Try again in a moment",
        _ => "Something went wrong",
    };
    if let ApiError::Internal(detail) = &err {
        tracing::error!(error = %detail, "portal request failed");
    }
    let message = match &err {
        ApiError::Internal(_) => "An internal error occurred; the server log has the details.".to_string(),
        other => other.to_string(),
    };
    error_page(area, caller.map(viewer), err.status(), title, &message)
}

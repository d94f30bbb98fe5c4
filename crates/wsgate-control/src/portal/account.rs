//! Signing in, out and up, for both portals. The session is the REST API's: the same user
//! table, password check and session store, and the same `wsgate_session` cookie (HttpOnly,
//! Secure, SameSite=Strict), so one sign-in serves both portals.
//!
//! Before there is a session, the sign-in and sign-up forms are guarded by a "form cookie": a
//! random value in an HttpOnly cookie whose HMAC is the form's hidden field. Another site can
//! make a browser post to us but can neither read the cookie nor (SameSite=Strict) make it be
//! sent, so it cannot sign a victim into an account of its choosing (login CSRF).

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::forms::{Form, Problems, safe_next, same};
use super::html::{Area, Notice, Page, csrf_input, esc, see_other, text_field};
use crate::auth;
use crate::error::ApiError;
use crate::limits::ClientAddress;
use crate::rest::{extract, session};
use crate::state::AppState;
use crate::{crypto, now};

const FORM_COOKIE: &str = "wsgate_form";

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    notice: Option<String>,
}

pub async fn publisher_login_page(state: State<AppState>, headers: HeaderMap, query: Query<LoginQuery>) -> Response {
    login_page(Area::Publisher, &state, &headers, &query.0)
}

pub async fn devportal_login_page(state: State<AppState>, headers: HeaderMap, query: Query<LoginQuery>) -> Response {
    login_page(Area::Devportal, &state, &headers, &query.0)
}

pub async fn publisher_login(
    State(state): State<AppState>,
    address: ClientAddress,
    headers: HeaderMap,
    form: Form,
) -> Response {
    login(Area::Publisher, &state, address, &headers, &form).await
}

pub async fn devportal_login(
    State(state): State<AppState>,
    address: ClientAddress,
    headers: HeaderMap,
    form: Form,
) -> Response {
    login(Area::Devportal, &state, address, &headers, &form).await
}

pub async fn publisher_logout(State(state): State<AppState>, headers: HeaderMap, form: Form) -> Response {
    logout(Area::Publisher, &state, &headers, &form).await
}

pub async fn devportal_logout(State(state): State<AppState>, headers: HeaderMap, form: Form) -> Response {
    logout(Area::Devportal, &state, &headers, &form).await
}

fn login_page(area: Area, state: &AppState, headers: &HeaderMap, query: &LoginQuery) -> Response {
    let next = safe_next(query.next.as_deref(), area.base());
    let notice = query.notice.as_deref().and_then(Notice::parse);
    let attempt = Attempt { next: &next, notice, username: "", problem: None };
    render_login(area, state, headers, &attempt, StatusCode::OK)
}

/// What the sign-in page shows besides the form: where it leads, a notice, and the user name
/// and problem of a refused attempt (wrong password, expired form).
struct Attempt<'a> {
    next: &'a str,
    notice: Option<Notice>,
    username: &'a str,
    problem: Option<&'a str>,
}

fn render_login(
    area: Area,
    state: &AppState,
    headers: &HeaderMap,
    attempt: &Attempt<'_>,
    status: StatusCode,
) -> Response {
    let Attempt { next, notice, username, problem } = *attempt;
    let (cookie, fresh) = form_cookie(headers);
    let hint = match area {
        Area::Publisher => {
            "The first admin is \"admin\", with the password printed at first start (or WSGATE_ADMIN_PASSWORD)."
        }
        Area::Devportal => "",
    };
    let signup = match (area, state.settings.self_signup) {
        (Area::Devportal, true) => r#"<p>New here? <a href="/devportal/signup">Create an account</a>.</p>"#,
        (Area::Devportal, false) => "<p>Accounts are created by an administrator on this server.</p>",
        (Area::Publisher, _) => {
            r#"<p>Looking for APIs to use? Go to the <a href="/devportal">Developer Portal</a>.</p>"#
        }
    };
    let alert = problem.map(super::html::alert).unwrap_or_default();
    let body = format!(
        r#"{alert}<form method="post" action="{base}/login" class="card narrow">
{csrf}<input type="hidden" name="next" value="{next}">
{user}
{password}
<button type="submit" class="primary">Sign in</button>
</form>
{signup}"#,
        base = area.base(),
        csrf = csrf_input(&auth::csrf_token(&cookie)),
        next = esc(next),
        user =
            text_field("username", "User name", username, hint, None, r#"autocomplete="username" required autofocus"#),
        password = text_field(
            "password",
            "Password",
            "",
            "",
            None,
            r#"type="password" autocomplete="current-password" required"#
        ),
    );
    let page = Page { area, title: "Sign in", viewer: None, notice, body }.render(status);
    with_form_cookie(page, &cookie, fresh)
}

async fn login(area: Area, state: &AppState, address: ClientAddress, headers: &HeaderMap, form: &Form) -> Response {
    let next = safe_next(Some(form.get("next")), area.base());
    let username = form.get("username");
    let refused = |problem| Attempt { next: &next, notice: None, username, problem: Some(problem) };
    if !form_cookie_matches(headers, form) {
        let attempt = refused("The sign-in form had expired. Please try again.");
        return render_login(area, state, headers, &attempt, StatusCode::FORBIDDEN);
    }
    let user = match auth::check_password(state, address, username, form.raw("password")).await {
        Ok(user) => user,
        Err(ApiError::WrongCredentials) => {
            let attempt = refused("Wrong user name or password.");
            return render_login(area, state, headers, &attempt, StatusCode::UNAUTHORIZED);
        }
        Err(err @ ApiError::TooManyAttempts { .. }) => {
            let message = format!("Too many failed sign-ins: {err}.");
            let mut page = render_login(area, state, headers, &refused(&message), err.status());
            if let ApiError::TooManyAttempts { retry_after } = err {
                page.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            return page;
        }
        Err(err) => return super::html::error_page(area, None, err.status(), "Cannot sign in", &err.to_string()),
    };
    signed_in(area, state, &user.name, &next).await
}

/// Opens a session and sends the browser on with its cookie.
async fn signed_in(area: Area, state: &AppState, user: &str, next: &str) -> Response {
    match auth::open_session(state, user).await {
        Ok(session) => {
            tracing::info!(user, "signed in to the portal");
            let mut response = see_other(next);
            let cookie = auth::session_cookie_header(&session.token, session.expires_at - now());
            response.headers_mut().append(header::SET_COOKIE, cookie);
            response
        }
        Err(err) => super::html::error_page(area, None, err.status(), "Cannot sign in", &err.to_string()),
    }
}

async fn logout(area: Area, state: &AppState, headers: &HeaderMap, form: &Form) -> Response {
    let mut with_csrf = headers.clone();
    if let Ok(value) = HeaderValue::from_str(form.get("csrf")) {
        with_csrf.insert(auth::CSRF_HEADER, value);
    }
    match auth::identify(state, &Method::POST, &with_csrf).await {
        Ok(caller) => {
            if let Err(err) = state.store().delete_session(&caller.session_hash).await {
                return super::visit::failure(area, &caller, err.into());
            }
        }
        // Already gone: signing out only has to clear the cookie.
        Err(ApiError::NotSignedIn) => {}
        Err(err) => return super::html::error_page(area, None, err.status(), "Cannot sign out", &err.to_string()),
    }
    let mut response = see_other(&format!("{}/login?notice={}", area.base(), Notice::SignedOut.code()));
    response.headers_mut().append(header::SET_COOKIE, auth::cleared_cookie_header());
    response
}

pub async fn signup_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    render_signup(&state, &headers, "", &Problems::default(), StatusCode::OK)
}

fn render_signup(
    state: &AppState,
    headers: &HeaderMap,
    name: &str,
    problems: &Problems,
    status: StatusCode,
) -> Response {
    if !state.settings.self_signup {
        let body = r#"<p class="lead">Self sign-up is turned off on this server (<code>control.self_signup = false</code>).</p>
<p>Ask an administrator to create an account for you, then <a href="/devportal/login">sign in</a>.</p>"#;
        let page =
            Page { area: Area::Devportal, title: "Sign-up is closed", viewer: None, notice: None, body: body.into() };
        return page.render(StatusCode::FORBIDDEN);
    }
    let (cookie, fresh) = form_cookie(headers);
    let body = format!(
        r#"{summary}<form method="post" action="/devportal/signup" class="card narrow" novalidate>
{csrf}
{name}
{password}
{repeat}
<button type="submit" class="primary">Create account</button>
</form>
<p>Already have an account? <a href="/devportal/login">Sign in</a>.</p>"#,
        summary = problems.summary(),
        csrf = csrf_input(&auth::csrf_token(&cookie)),
        name = text_field(
            "name",
            "User name",
            name,
            "Letters, digits, '-', '.', '_' or '@'; up to 64 characters.",
            problems.on("name"),
            r#"autocomplete="username" required autofocus"#
        ),
        password = text_field(
            "password",
            "Password",
            "",
            "At least 8 characters.",
            problems.on("password"),
            r#"type="password" autocomplete="new-password" required"#
        ),
        repeat = text_field(
            "password2",
            "Repeat the password",
            "",
            "",
            problems.on("password2"),
            r#"type="password" autocomplete="new-password" required"#
        ),
    );
    let page =
        Page { area: Area::Devportal, title: "Create an account", viewer: None, notice: None, body }.render(status);
    with_form_cookie(page, &cookie, fresh)
}

/// Like the REST sign-up, the answer does not tell whether the name was taken: either way the
/// browser goes to the sign-in page, which welcomes the new user once they sign in.
pub async fn signup(State(state): State<AppState>, address: ClientAddress, headers: HeaderMap, form: Form) -> Response {
    let name = form.get("name");
    let mut problems = Problems::default();
    if !form_cookie_matches(&headers, &form) {
        problems.general("The sign-up form had expired. Please try again.");
        return render_signup(&state, &headers, name, &problems, StatusCode::FORBIDDEN);
    }
    if form.raw("password") != form.raw("password2") {
        problems.field("password2", "The two passwords differ.");
        return render_signup(&state, &headers, name, &problems, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let body = json!({ "name": name, "password": form.raw("password") });
    let created = match extract::parse(body.to_string().as_bytes()) {
        Ok(parsed) => session::signup(State(state.clone()), address, extract::Body(parsed)).await,
        Err(err) => Err(err),
    };
    if let Err(err) = created {
        let status = err.status();
        return render_signup(&state, &headers, name, &Problems::from_api(err), status);
    }
    let welcome = format!("/devportal?notice={}", Notice::Welcome.code());
    see_other(&format!(
        "/devportal/login?next={}&notice={}",
        super::forms::encode(&welcome),
        Notice::AccountRequested.code()
    ))
}

/// The form cookie's value, and whether it is new (and must be set on the answer).
fn form_cookie(headers: &HeaderMap) -> (String, bool) {
    match auth::cookie(headers, FORM_COOKIE) {
        Some(value) if value.len() >= 32 => (value, false),
        // Should the system random source fail, the form fails its check and says so.
        _ => (crypto::secret().unwrap_or_default(), true),
    }
}

fn with_form_cookie(mut response: Response, value: &str, fresh: bool) -> Response {
    if fresh {
        let cookie = format!("{FORM_COOKIE}={value}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=86400");
        if let Ok(cookie) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }
    response
}

fn form_cookie_matches(headers: &HeaderMap, form: &Form) -> bool {
    auth::cookie(headers, FORM_COOKIE)
        .filter(|value| value.len() >= 32)
        .is_some_and(|value| same(&auth::csrf_token(&value), form.get("csrf")))
}

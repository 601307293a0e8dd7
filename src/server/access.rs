//! Access keys (D17): with `controller.access_keys` set, the API wants one of them as a Bearer
//! token, and the web UI a session opened on its sign-in page (an `HttpOnly`, `SameSite=Strict`
//! cookie). Keys are compared in constant time and never logged; sessions live in memory.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use parking_lot::Mutex;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::api::ApiError;

/// The cookie that carries a web UI session.
const SESSION_COOKIE: &str = "model_compose_session";
/// Where the web UI sends whoever has no session.
pub const SIGN_IN_PAGE: &str = "/sign-in";

/// The configured keys and the web UI's open sessions.
pub struct AccessKeys {
    keys: Vec<String>,
    sessions: Mutex<HashSet<String>>,
}

impl AccessKeys {
    /// `None` when no keys are configured: everything is open.
    pub fn new(keys: &[String]) -> Option<Arc<Self>> {
        (!keys.is_empty()).then(|| {
            Arc::new(Self {
                keys: keys.to_vec(),
                sessions: Mutex::new(HashSet::new()),
            })
        })
    }

    /// Whether `given` is one of the keys; every key is compared in full, in constant time.
    fn accepts(&self, given: &str) -> bool {
        self.keys
            .iter()
            .fold(subtle::Choice::from(0), |found, key| {
                found | key.as_bytes().ct_eq(given.as_bytes())
            })
            .into()
    }

    fn open_session(&self) -> Result<String, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.sessions.lock().insert(token.clone());
        Ok(token)
    }

    /// Whether the request carries an open session.
    pub fn has_session(&self, headers: &HeaderMap) -> bool {
        session_cookie(headers).is_some_and(|token| self.sessions.lock().contains(token))
    }

    fn close_session(&self, headers: &HeaderMap) {
        if let Some(token) = session_cookie(headers) {
            self.sessions.lock().remove(token);
        }
    }
}

/// The session token in the request's cookies.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .find_map(|cookie| {
            let (name, value) = cookie.trim().split_once('=')?;
            (name == SESSION_COOKIE).then_some(value)
        })
}

/// The API's check: `Authorization: Bearer <key>` on every route but `health_path`.
pub async fn require_bearer(
    State((keys, health_path)): State<(Arc<AccessKeys>, String)>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == health_path {
        return next.run(request).await;
    }
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if token.is_some_and(|token| keys.accepts(token.trim())) {
        return next.run(request).await;
    }
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "An access key is required: send `Authorization: Bearer <key>`.",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// The web UI's check: without a session, pages lead to the sign-in page and calls get 401.
/// The sign-in page itself and the site's static files need none.
pub async fn require_session(
    State(keys): State<Arc<AccessKeys>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let open = path == SIGN_IN_PAGE
        || path.starts_with("/_auth/")
        || path.starts_with("/pkg/")
        || path == "/favicon.svg";
    if open || keys.has_session(request.headers()) {
        return next.run(request).await;
    }
    if path.starts_with("/_ui/") {
        return ApiError::new(StatusCode::UNAUTHORIZED, "Sign in first.").into_response();
    }
    Redirect::to(SIGN_IN_PAGE).into_response()
}

#[derive(Deserialize)]
pub struct SignIn {
    key: String,
}

/// `POST /_auth/sign-in` (the sign-in page's form): a right key opens a session.
pub async fn sign_in(State(keys): State<Arc<AccessKeys>>, Form(form): Form<SignIn>) -> Response {
    if !keys.accepts(form.key.trim()) {
        return Redirect::to(&format!("{SIGN_IN_PAGE}?failed=1")).into_response();
    }
    match keys.open_session() {
        Ok(token) => {
            let cookie = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        Err(err) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot open a session: {err}"),
        )
        .into_response(),
    }
}

/// `POST /_auth/sign-out`: closes the session and forgets the cookie.
pub async fn sign_out(State(keys): State<Arc<AccessKeys>>, headers: HeaderMap) -> Response {
    keys.close_session(&headers);
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to(SIGN_IN_PAGE)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_whole_and_exact() {
        let keys = AccessKeys::new(&["first-key-123".into(), "second-key-456".into()]).unwrap();
        assert!(keys.accepts("first-key-123"));
        assert!(keys.accepts("second-key-456"));
        for wrong in ["", "first-key-12", "first-key-1234", "FIRST-KEY-123", "x"] {
            assert!(!keys.accepts(wrong), "{wrong}");
        }
        assert!(AccessKeys::new(&[]).is_none());
    }

    #[test]
    fn sessions_come_from_the_cookie() {
        let keys = AccessKeys::new(&["k".repeat(12)]).unwrap();
        let token = keys.open_session().unwrap();
        assert_eq!(token.len(), 64);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("theme=dark; {SESSION_COOKIE}={token}")).unwrap(),
        );
        assert!(keys.has_session(&headers));
        keys.close_session(&headers);
        assert!(!keys.has_session(&headers));
        assert!(!keys.has_session(&HeaderMap::new()));
    }
}

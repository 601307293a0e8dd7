//! Access keys (D17): with `controller.access_keys` set, the API wants one of them as a Bearer
//! token, and the web UI a session opened on its sign-in page (an `HttpOnly`, `SameSite=Strict`
//! cookie, `Secure` behind a trusted HTTPS proxy). Keys are compared in constant time and never
//! logged; failures are logged with the client's address and slowed ([`throttle`]); sessions
//! are kept in the history's database ([`SessionStore`]), so that every replica accepts them
//! and a restart keeps them, and expire when unused.

mod throttle;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::client::Proxies;
use super::listen::Peer;
use super::rest::ApiError;
use crate::store::{SessionLimits, SessionStore, SessionUse};
use throttle::Throttle;

/// The cookie that carries a web UI session.
const SESSION_COOKIE: &str = "model_compose_session";
/// Where the web UI sends whoever has no session.
pub const SIGN_IN_PAGE: &str = "/sign-in";

/// The configured keys, where the web UI's sessions are kept, and who failed lately.
pub struct AccessKeys {
    keys: Vec<String>,
    sessions: Arc<dyn SessionStore>,
    limits: SessionLimits,
    proxies: Proxies,
    throttle: Throttle,
}

impl AccessKeys {
    /// `None` when no keys are configured: everything is open.
    pub fn new(
        keys: &[String],
        sessions: Arc<dyn SessionStore>,
        limits: SessionLimits,
        proxies: Proxies,
    ) -> Option<Arc<Self>> {
        (!keys.is_empty()).then(|| {
            Arc::new(Self {
                keys: keys.to_vec(),
                sessions,
                limits,
                proxies,
                throttle: Throttle::default(),
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

    /// Checks a key a client gave (`what`: how it gave it), unless the client must still wait
    /// after failing too often: then how long. Failures are logged with the client's address.
    fn check(&self, given: &str, client: Option<IpAddr>, what: &str) -> Checked {
        if let Some(wait) = client.and_then(|client| self.throttle.wait(client)) {
            return Checked::Wait(wait);
        }
        if self.accepts(given) {
            if let Some(client) = client {
                self.throttle.succeeded(client);
            }
            return Checked::Right;
        }
        let failures = client.map_or(0, |client| self.throttle.failed(client));
        let client = client.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
        tracing::warn!(%client, failures, "{what} refused: not an access key");
        Checked::Wrong
    }

    /// The client's address and whether it came over HTTPS, as the trusted proxies say.
    fn client(&self, request_headers: &HeaderMap, peer: Option<&Peer>) -> (Option<IpAddr>, bool) {
        (
            self.proxies.client(peer, request_headers),
            self.proxies.is_https(peer, request_headers),
        )
    }

    async fn open_session(&self) -> Result<String, String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|err| err.to_string())?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.sessions
            .open_session(&token_hash(&token), self.limits)
            .await
            .map_err(|err| err.to_string())?;
        Ok(token)
    }

    /// Whether the request carries an open session (marking it used).
    pub async fn session(&self, headers: &HeaderMap) -> SessionUse {
        let Some(token) = session_cookie(headers) else {
            return SessionUse::Unknown;
        };
        match self
            .sessions
            .use_session(&token_hash(token), self.limits.idle)
            .await
        {
            Ok(used) => used,
            Err(err) => {
                tracing::warn!("cannot read the sessions: {err}");
                SessionUse::Unknown
            }
        }
    }

    async fn close_session(&self, headers: &HeaderMap) {
        if let Some(token) = session_cookie(headers) {
            if let Err(err) = self.sessions.close_session(&token_hash(token)).await {
                tracing::warn!("cannot close a session: {err}");
            }
        }
    }

    /// The session cookie: `token` for as long as a session lasts unused (`None`: removed).
    fn cookie(&self, token: Option<&str>, https: bool) -> HeaderValue {
        let (value, age) = match token {
            Some(token) => (token, self.limits.idle.as_secs()),
            None => ("", 0),
        };
        let secure = if https { "; Secure" } else { "" };
        let cookie = format!(
            "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={age}{secure}"
        );
        HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// What a key check found.
enum Checked {
    Right,
    Wrong,
    /// Too many failures lately: the client must wait this long first.
    Wait(Duration),
}

/// What the database keeps of a session token: it opens nothing by itself.
fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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

/// Whole seconds, rounded up, for `Retry-After` and messages.
fn seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
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
    let (client, _) = keys.client(request.headers(), request.extensions().get::<Peer>());
    let refused = match token.map(|token| keys.check(token.trim(), client, "Bearer key")) {
        Some(Checked::Right) => return next.run(request).await,
        Some(Checked::Wait(wait)) => {
            let wait = seconds(wait);
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many wrong access keys: try again in {wait} s."),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            return response;
        }
        Some(Checked::Wrong) | None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "An access key is required: send `Authorization: Bearer <key>`.",
        ),
    };
    let mut response = refused.into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// The web UI's check: without a session, pages lead to the sign-in page and calls get 401.
/// The sign-in page itself and the site's static files need none. A use that pushed the
/// session's expiry back sends the cookie again, with its new lifetime.
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
    if open {
        return next.run(request).await;
    }
    if let SessionUse::Open { refreshed } = keys.session(request.headers()).await {
        let (_, https) = keys.client(request.headers(), request.extensions().get::<Peer>());
        let token = session_cookie(request.headers()).map(str::to_string);
        let mut response = next.run(request).await;
        if refreshed {
            let cookie = keys.cookie(token.as_deref(), https);
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        return response;
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
pub async fn sign_in(
    State(keys): State<Arc<AccessKeys>>,
    request: Request,
) -> Result<Response, ApiError> {
    let (client, https) = keys.client(request.headers(), request.extensions().get::<Peer>());
    let Form(form) = Form::<SignIn>::from_request(request, &())
        .await
        .map_err(|err| ApiError::new(err.status(), err.body_text()))?;
    match keys.check(form.key.trim(), client, "sign-in") {
        Checked::Right => {}
        Checked::Wrong => {
            return Ok(Redirect::to(&format!("{SIGN_IN_PAGE}?failed=1")).into_response())
        }
        Checked::Wait(wait) => {
            let page = format!("{SIGN_IN_PAGE}?wait={}", seconds(wait));
            return Ok(Redirect::to(&page).into_response());
        }
    }
    let token = keys.open_session().await.map_err(|err| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot open a session: {err}"),
        )
    })?;
    let cookie = keys.cookie(Some(&token), https);
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response())
}

/// `POST /_auth/sign-out`: closes the session and forgets the cookie.
pub async fn sign_out(State(keys): State<Arc<AccessKeys>>, request: Request) -> Response {
    let (_, https) = keys.client(request.headers(), request.extensions().get::<Peer>());
    keys.close_session(request.headers()).await;
    let cookie = keys.cookie(None, https);
    ([(header::SET_COOKIE, cookie)], Redirect::to(SIGN_IN_PAGE)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    async fn keys(list: &[&str]) -> (Arc<AccessKeys>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("history.db"))
            .await
            .unwrap();
        let limits = SessionLimits {
            idle: Duration::from_secs(3600),
            max: 10,
        };
        let list: Vec<String> = list.iter().map(|k| k.to_string()).collect();
        let keys = AccessKeys::new(&list, Arc::new(store), limits, Proxies::default()).unwrap();
        (keys, dir)
    }

    #[tokio::test]
    async fn keys_match_whole_and_exact() {
        let (keys, _dir) = keys(&["first-key-123", "second-key-456"]).await;
        assert!(keys.accepts("first-key-123"));
        assert!(keys.accepts("second-key-456"));
        for wrong in ["", "first-key-12", "first-key-1234", "FIRST-KEY-123", "x"] {
            assert!(!keys.accepts(wrong), "{wrong}");
        }
    }

    #[tokio::test]
    async fn sessions_come_from_the_cookie_and_the_store_keeps_no_token() {
        let (keys, _dir) = keys(&["kkkkkkkkkkkk"]).await;
        let token = keys.open_session().await.unwrap();
        assert_eq!(token.len(), 64);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("theme=dark; {SESSION_COOKIE}={token}")).unwrap(),
        );
        assert!(matches!(
            keys.session(&headers).await,
            SessionUse::Open { .. }
        ));
        assert_ne!(token_hash(&token), token);
        assert_eq!(
            keys.sessions
                .use_session(&token, keys.limits.idle)
                .await
                .unwrap(),
            SessionUse::Unknown,
            "the token itself opens nothing in the store"
        );
        keys.close_session(&headers).await;
        assert_eq!(keys.session(&headers).await, SessionUse::Unknown);
        assert_eq!(keys.session(&HeaderMap::new()).await, SessionUse::Unknown);
    }

    #[tokio::test]
    async fn the_cookie_is_secure_over_https_and_lives_as_long_as_a_session() {
        let (keys, _dir) = keys(&["kkkkkkkkkkkk"]).await;
        assert_eq!(
            keys.cookie(Some("t"), false),
            "model_compose_session=t; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600"
        );
        assert_eq!(
            keys.cookie(Some("t"), true),
            "model_compose_session=t; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600; Secure"
        );
        assert_eq!(
            keys.cookie(None, false),
            "model_compose_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        );
    }
}

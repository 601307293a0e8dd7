//! What keeps a server meant for this machine from serving other people's web pages: CORS
//! for the API (D15), the `Host` check against DNS rebinding (D16), the web UI's server
//! functions answering only their own pages, and headers that forbid framing and sniffing.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use compose::config::Origins;
use tower::ServiceBuilder;
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use super::rest::ApiError;

/// Adds the checks every server of this process gets, once it knows where it listens: while
/// bound to a loopback address, requests must name this machine in their `Host`.
pub fn protect(router: Router, bound: SocketAddr) -> Router {
    protect_as(router, bound, true)
}

/// [`protect`], with the `Host` check left to the router when `checks_host` is false (an
/// `mcp-server` adapter that lists its `allowed_hosts`, or turned the checks off).
pub fn protect_as(router: Router, bound: SocketAddr, checks_host: bool) -> Router {
    let host = (checks_host && bound.ip().is_loopback())
        .then(|| middleware::from_fn_with_state(bound.ip(), check_host));
    // One layer (each `Router::layer` is a box every request clones).
    router.layer(ServiceBuilder::new().option_layer(host).layer(
        SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ))
}

/// What the web UI's pages may load and where they may send requests: images, audio and
/// video from their own origin (and `data:`, `blob:`), requests to their own origin only, so
/// that an answer cannot send what the page shows anywhere (a remote Markdown image loads
/// through the server when the user asks, see `remote`); framed by their own origin only.
pub const PAGE_POLICY: &str = "frame-ancestors 'self'; img-src 'self' data: blob:; \
     media-src 'self' data: blob:; connect-src 'self'";

/// The web UI's pages get [`PAGE_POLICY`], and are framed by their own origin only
/// (clickjacking).
pub fn page_headers(router: Router) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(SetResponseHeaderLayer::if_not_present(
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::X_FRAME_OPTIONS,
                HeaderValue::from_static("SAMEORIGIN"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PAGE_POLICY),
            )),
    )
}

/// 403 for a request whose `Host` is not this machine: a page whose own host name was made to
/// point at 127.0.0.1 (DNS rebinding) must not reach a server bound there.
async fn check_host(State(bound): State<IpAddr>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    match host {
        Some(host) if !names_this_machine(host, bound) => ApiError::new(
            StatusCode::FORBIDDEN,
            "This server answers only requests addressed to localhost or a loopback address \
             (the Host header names another host).",
        )
        .into_response(),
        // No Host at all comes from no browser (HTTP/1.0 clients, probes).
        _ => next.run(request).await,
    }
}

/// Whether `host` (a `Host` value, port included) is `localhost`, a loopback address, or the
/// address the server is bound to.
fn names_this_machine(host: &str, bound: IpAddr) -> bool {
    let name = host_name(host);
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    name.parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback() || ip == bound)
}

/// The host part of `host[:port]` or `[v6]:port`.
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Whether an `Origin` is a page served from this machine (`http://localhost:3000`).
fn is_loopback_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https") && !rest.contains('/') && {
        let name = host_name(rest);
        name.eq_ignore_ascii_case("localhost")
            || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// CORS for the API (D15): pages served from this machine, plus the listed origins, may call
/// it with credentials; `"*"` lets any page call it, without credentials.
pub fn cors(origins: &Origins) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods(AllowMethods::list([
            Method::GET,
            Method::POST,
            Method::DELETE,
            Method::OPTIONS,
        ]))
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([
            HeaderName::from_static("x-task-id"),
            HeaderName::from_static("x-request-id"),
        ])
        .max_age(std::time::Duration::from_secs(600));
    match origins {
        Origins::Any => layer.allow_origin(AllowOrigin::any()),
        listed => {
            let origins = listed.clone();
            layer
                .allow_origin(AllowOrigin::predicate(move |origin, _| {
                    origin.to_str().is_ok_and(|o| origin_allowed(&origins, o))
                }))
                .allow_credentials(true)
        }
    }
}

/// Whether a page of `origin` may call the API: loopback pages always, listed ones, or any.
pub fn origin_allowed(origins: &Origins, origin: &str) -> bool {
    match origins {
        Origins::Any => true,
        Origins::Loopback => is_loopback_origin(origin),
        Origins::Listed(listed) => is_loopback_origin(origin) || listed.iter().any(|l| l == origin),
    }
}

/// A request that changes something (anything but GET, HEAD and OPTIONS) from a page the API
/// does not serve (D15's origins; `Origin: null` included), or that a browser marks
/// `Sec-Fetch-Site: cross-site` without an origin, gets 403 before its body is read. CORS alone
/// only keeps such a page from reading the answer: a form post or a `no-cors` fetch would still
/// start a run. Clients that are not browsers send neither header and pass.
pub async fn allowed_origins_only_for_changes(
    State(origins): State<Origins>,
    request: Request,
    next: Next,
) -> Response {
    let reads = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !reads && !may_change(&origins, request.headers()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "Cross-site request refused: pages of this origin may not call the API (see the \
             adapter's origins).",
        )
        .into_response();
    }
    next.run(request).await
}

/// Whether a browser's headers allow a request that changes state (see
/// [`allowed_origins_only_for_changes`]).
fn may_change(origins: &Origins, headers: &HeaderMap) -> bool {
    match headers.get(header::ORIGIN).map(|v| v.to_str()) {
        Some(Ok(origin)) => origin_allowed(origins, origin),
        Some(Err(_)) => false,
        None => headers
            .get(HeaderName::from_static("sec-fetch-site"))
            .is_none_or(|site| site != "cross-site"),
    }
}

/// The web UI's calls (server functions and the sign-in forms: everything but GET and HEAD)
/// come from its own pages: a browser that says a call comes from another site gets 403.
/// Clients that are not browsers send neither `Origin` nor `Sec-Fetch-Site` and pass; pages
/// themselves may be linked from anywhere.
pub async fn same_origin_only_for_calls(request: Request, next: Next) -> Response {
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    if !reads && is_cross_site(request.headers()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "Cross-site request refused: the web UI answers its own pages only.",
        )
        .into_response();
    }
    next.run(request).await
}

fn is_cross_site(headers: &HeaderMap) -> bool {
    let text = |name: HeaderName| headers.get(name).map(|v| v.to_str().unwrap_or("?"));
    if let Some(site) = text(HeaderName::from_static("sec-fetch-site")) {
        if !matches!(site, "same-origin" | "none") {
            return true;
        }
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_none_or(|(_, authority)| !authority.eq_ignore_ascii_case(host)),
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// What an MCP endpoint answers (spec §15.1; MCP's specification asks servers to check
/// `Origin`): pages of allowed origins only, on every request; with an adapter's
/// `allowed_hosts`, only those `Host` values (globs, `localhost:*`).
#[derive(Debug, Clone)]
pub struct McpExposure {
    /// `None`: no checks at all (`disable_dns_rebinding_protection`).
    rules: Option<McpRules>,
}

#[derive(Debug, Clone)]
struct McpRules {
    hosts: Option<Vec<String>>,
    origins: Option<Vec<String>>,
    /// Which pages may call it when no `allowed_origins` are listed (D15).
    fallback: Origins,
}

impl McpExposure {
    /// Beside the REST API: the API's origins.
    pub fn of_api(origins: Origins) -> Self {
        Self {
            rules: Some(McpRules {
                hosts: None,
                origins: None,
                fallback: origins,
            }),
        }
    }

    /// An `mcp-server` adapter's own rules.
    pub fn of_adapter(adapter: &compose::config::Adapter) -> Self {
        if adapter.disable_dns_rebinding_protection {
            return Self { rules: None };
        }
        Self {
            rules: Some(McpRules {
                hosts: adapter.allowed_hosts.clone(),
                origins: adapter.allowed_origins.clone(),
                fallback: adapter.origins.clone(),
            }),
        }
    }

    /// Why a request with these headers is refused, if it is.
    fn refusal(&self, headers: &HeaderMap) -> Option<(StatusCode, &'static str)> {
        let rules = self.rules.as_ref()?;
        let text = |name| {
            headers
                .get(name)
                .map(|v: &HeaderValue| v.to_str().unwrap_or("?"))
        };
        if let Some(hosts) = &rules.hosts {
            let host = text(header::HOST).unwrap_or_default();
            if !hosts.iter().any(|pattern| glob_matches(pattern, host)) {
                return Some((
                    StatusCode::MISDIRECTED_REQUEST,
                    "Invalid Host header: this MCP server answers only the hosts its \
                     allowed_hosts list.",
                ));
            }
        }
        let origin = text(header::ORIGIN)?;
        let allowed = match &rules.origins {
            Some(listed) => listed.iter().any(|pattern| glob_matches(pattern, origin)),
            None => origin_allowed(&rules.fallback, origin),
        };
        (!allowed).then_some((
            StatusCode::FORBIDDEN,
            "Cross-site request refused: pages of this origin may not call this MCP server \
             (see the adapter's origins or allowed_origins).",
        ))
    }
}

/// Refuses what an [`McpExposure`] refuses.
pub async fn mcp_exposure(
    State(exposure): State<std::sync::Arc<McpExposure>>,
    request: Request,
    next: Next,
) -> Response {
    match exposure.refusal(request.headers()) {
        Some((status, message)) => ApiError::new(status, message).into_response(),
        None => next.run(request).await,
    }
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters (ASCII case
/// ignored): `localhost:*`, `https://*.example.com`.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.to_ascii_lowercase(), text.to_ascii_lowercase());
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_that_name_this_machine() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        for host in [
            "localhost",
            "LOCALHOST:8081",
            "127.0.0.1:8080",
            "127.0.0.2",
            "[::1]:8080",
            "[::1]",
        ] {
            assert!(names_this_machine(host, loopback), "{host}");
        }
        for host in [
            "rebind.evil.example",
            "rebind.evil.example:8080",
            "localhost.evil.example",
            "10.0.0.1:8080",
            "",
        ] {
            assert!(!names_this_machine(host, loopback), "{host}");
        }
    }

    #[test]
    fn loopback_origins() {
        for origin in [
            "http://localhost:3000",
            "http://127.0.0.1:8081",
            "https://localhost",
            "http://[::1]:5173",
        ] {
            assert!(is_loopback_origin(origin), "{origin}");
        }
        for origin in [
            "http://evil.example",
            "null",
            "http://localhost.evil.example",
            "file://localhost/etc",
            "http://127.0.0.1:8081/path",
        ] {
            assert!(!is_loopback_origin(origin), "{origin}");
        }
    }

    #[test]
    fn cross_site_requests() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        let host = ("host", "127.0.0.1:8081");
        assert!(!is_cross_site(&headers(&[host])));
        assert!(!is_cross_site(&headers(&[
            host,
            ("origin", "http://127.0.0.1:8081")
        ])));
        assert!(!is_cross_site(&headers(&[
            host,
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(is_cross_site(&headers(&[
            host,
            ("origin", "http://evil.example")
        ])));
        assert!(is_cross_site(&headers(&[
            host,
            ("origin", "http://127.0.0.1:9999")
        ])));
        assert!(is_cross_site(&headers(&[host, ("origin", "null")])));
        assert!(is_cross_site(&headers(&[
            host,
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(is_cross_site(&headers(&[
            host,
            ("sec-fetch-site", "same-site")
        ])));
    }

    #[test]
    fn changes_from_pages_the_api_does_not_serve() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        let listed = Origins::Listed(vec!["https://app.example.com".into()]);
        for origins in [&Origins::Loopback, &listed, &Origins::Any] {
            assert!(may_change(origins, &headers(&[])));
            assert!(may_change(
                origins,
                &headers(&[("origin", "http://127.0.0.1:8081")])
            ));
            assert!(may_change(
                origins,
                &headers(&[("sec-fetch-site", "same-site")])
            ));
        }
        for origins in [&Origins::Loopback, &listed] {
            for refused in [
                &[("origin", "https://evil.example")][..],
                &[("origin", "null")],
                &[("origin", "http://localhost.evil.example")],
                &[("sec-fetch-site", "cross-site")],
            ] {
                assert!(!may_change(origins, &headers(refused)), "{refused:?}");
            }
        }
        assert!(may_change(
            &listed,
            &headers(&[
                ("origin", "https://app.example.com"),
                ("sec-fetch-site", "cross-site")
            ])
        ));
        assert!(may_change(
            &Origins::Any,
            &headers(&[("origin", "https://evil.example")])
        ));
    }

    #[test]
    fn host_and_origin_globs_match_as_the_original_writes_them() {
        assert!(glob_matches("localhost:*", "localhost:8080"));
        assert!(glob_matches("LOCALHOST:*", "localhost:1"));
        assert!(!glob_matches("localhost:*", "localhost.evil.com:80"));
        assert!(glob_matches(
            "https://*.example.com",
            "https://app.example.com"
        ));
        assert!(!glob_matches(
            "https://*.example.com",
            "https://example.com.evil"
        ));
        assert!(glob_matches("127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(!glob_matches("127.0.0.1:8080", "127.0.0.1:80801"));
        assert!(glob_matches("*", "anything"));
    }
}

//! Who sent a request: the client's address, and whether it reached us over HTTPS. A reverse
//! proxy listed in `controller.trusted_proxies` is believed when it says (`X-Forwarded-For`,
//! `X-Forwarded-Proto`); anyone else's headers are not.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;

use super::listen::Peer;

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct Proxies(pub Vec<IpNet>);

impl Proxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: the connection's peer, or, when that is a trusted proxy, the
    /// last address in `X-Forwarded-For` that is not one (what the first proxy saw).
    pub fn client(&self, peer: Option<&Peer>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?.0.ip();
        if !self.trusts(peer) {
            return Some(peer);
        }
        let forwarded = headers
            .get_all(HeaderName::from_static("x-forwarded-for"))
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in forwarded.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) if self.trusts(ip) => continue,
                Ok(ip) => return Some(ip),
                Err(_) => break,
            }
        }
        Some(peer)
    }

    /// Whether the request reached the server over HTTPS: the server speaks plain HTTP, so
    /// only a trusted proxy saying `X-Forwarded-Proto: https` makes it so.
    pub fn is_https(&self, peer: Option<&Peer>, headers: &HeaderMap) -> bool {
        peer.is_some_and(|peer| self.trusts(peer.0.ip()))
            && headers
                .get(HeaderName::from_static("x-forwarded-proto"))
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn peer(ip: &str) -> Peer {
        Peer(std::net::SocketAddr::new(ip.parse().unwrap(), 40000))
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let none = Proxies::default();
        let proxies = Proxies(vec!["10.0.0.0/8".parse().unwrap()]);
        let forwarded = headers(&[
            ("x-forwarded-for", "203.0.113.9, 198.51.100.7, 10.0.0.3"),
            ("x-forwarded-proto", "https"),
        ]);
        let ip = |text: &str| Some(text.parse::<IpAddr>().unwrap());
        // A client that sends the headers itself is not believed.
        assert_eq!(
            none.client(Some(&peer("198.51.100.1")), &forwarded),
            ip("198.51.100.1")
        );
        assert!(!none.is_https(Some(&peer("198.51.100.1")), &forwarded));
        assert!(!proxies.is_https(Some(&peer("198.51.100.1")), &forwarded));
        // Through a trusted proxy: the last hop it did not add itself.
        assert_eq!(
            proxies.client(Some(&peer("10.0.0.2")), &forwarded),
            ip("198.51.100.7")
        );
        assert!(proxies.is_https(Some(&peer("10.0.0.2")), &forwarded));
        assert_eq!(
            proxies.client(Some(&peer("10.0.0.2")), &headers(&[])),
            ip("10.0.0.2")
        );
        assert!(!proxies.is_https(
            Some(&peer("10.0.0.2")),
            &headers(&[("x-forwarded-proto", "http")])
        ));
        assert_eq!(none.client(None, &forwarded), None);
    }
}

//! What a server exposed to callers lets them reach (D32), who it believes and how long it
//! remembers a sign-in (this implementation's additions): `controller.fetch`,
//! `controller.files`, `controller.trusted_proxies` and `controller.sessions`.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

/// `controller.fetch`: what a caller's `;url` values may reach beyond public addresses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchSettings {
    /// Host names (`images.internal`) and networks (`10.1.0.0/16`, `127.0.0.1`) a caller's
    /// links may name even though they are private, loopback or link-local.
    #[serde(deserialize_with = "allowed")]
    pub allow: Vec<Allowed>,
}

/// One entry of `controller.fetch.allow`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// A host name, lower-case, as a URL names it.
    Host(String),
    /// An address or a network of them.
    Network(IpNet),
}

/// `controller.files`: where a caller's `;path` values may point.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileSettings {
    /// Directories (relative to the config's) whose files a caller's paths may name; none
    /// by default, so that a caller reads no file of the server's.
    pub roots: Vec<PathBuf>,
}

/// `controller.sessions`: the web UI's sign-ins, when there are access keys (D17).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSettings {
    /// A session unused for this long is closed (each use pushes it back); 7 days.
    pub idle_timeout: super::Duration,
    /// The most sessions kept; past it the least recently used are closed.
    pub max_count: u64,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            idle_timeout: super::Duration(std::time::Duration::from_secs(7 * 86_400)),
            max_count: 10_000,
        }
    }
}

fn allowed<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Allowed>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|entry| parse_allowed(entry).map_err(serde::de::Error::custom))
        .collect()
}

fn parse_allowed(entry: &str) -> Result<Allowed, String> {
    let entry = entry.trim();
    if let Some(network) = network(entry) {
        return Ok(Allowed::Network(network));
    }
    let host = entry.trim_start_matches('[').trim_end_matches(']');
    let is_name = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if is_name {
        Ok(Allowed::Host(host.to_ascii_lowercase()))
    } else {
        Err(format!(
            "fetch.allow takes host names and networks (images.internal, 10.0.0.0/8, ::1); got {entry:?}"
        ))
    }
}

/// An address (`127.0.0.1`, `::1`, `[::1]`) as a network of one, or a network (`10.0.0.0/8`).
fn network(text: &str) -> Option<IpNet> {
    let text = text.trim_start_matches('[').trim_end_matches(']');
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

/// `controller.trusted_proxies`: the addresses (or networks) of reverse proxies whose
/// `X-Forwarded-For` and `X-Forwarded-Proto` are believed.
pub fn trusted_proxies<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|entry| {
            network(entry.trim()).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "trusted_proxies takes addresses and networks (10.0.0.2, 10.0.0.0/8); got {entry:?}"
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_entries() {
        let net = |text: &str| Allowed::Network(text.parse().unwrap());
        for (entry, expected) in [
            ("images.internal", Allowed::Host("images.internal".into())),
            ("LocalHost", Allowed::Host("localhost".into())),
            ("10.0.0.0/8", net("10.0.0.0/8")),
            ("127.0.0.1", net("127.0.0.1/32")),
            ("::1", net("::1/128")),
            ("[::1]", net("::1/128")),
            ("fc00::/7", net("fc00::/7")),
        ] {
            assert_eq!(parse_allowed(entry), Ok(expected), "{entry}");
        }
        for bad in ["", "http://x", "a..b", "10.0.0.0/40", "host:80"] {
            assert!(parse_allowed(bad).is_err(), "{bad}");
        }
    }
}

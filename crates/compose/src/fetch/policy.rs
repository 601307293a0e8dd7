//! What a caller's values may make the server read (D32): links over `http` and `https` to
//! public addresses, unless `controller.fetch.allow` lists the host or its network, and files
//! under `controller.files.roots` only. Values written in the config are read as they always
//! were; this is only for what came in with a run's input.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use reqwest::Url;

use crate::config::{Allowed, FetchSettings, FileSettings};

/// The most redirects a caller's link may take, each checked like the link itself.
pub const MAX_REDIRECTS: usize = 5;

/// What a caller's `;url` and `;path` values may reach.
#[derive(Debug, Default)]
pub struct Policy {
    hosts: Vec<String>,
    networks: Vec<IpNet>,
    /// Canonical directories (symlinks resolved).
    roots: Vec<PathBuf>,
    /// This machine's own addresses (its interfaces'), refused like loopback ones.
    own: Vec<IpAddr>,
}

impl Policy {
    /// The policy of `controller.fetch` and `controller.files`; the roots are relative to
    /// `dir` (the config's) and must exist.
    pub fn new(fetch: &FetchSettings, files: &FileSettings, dir: &Path) -> Result<Self, String> {
        let mut policy = Self::default();
        for allowed in &fetch.allow {
            match allowed {
                Allowed::Host(host) => policy.hosts.push(host.clone()),
                Allowed::Network(network) => policy.networks.push(*network),
            }
        }
        for root in &files.roots {
            let canonical = dir
                .join(root)
                .canonicalize()
                .map_err(|err| format!("controller.files.roots: {}: {err}", root.display()))?;
            policy.roots.push(canonical);
        }
        policy.own = if_addrs::get_if_addrs()
            .map(|interfaces| interfaces.iter().map(|i| i.ip()).collect())
            .unwrap_or_default();
        Ok(policy)
    }

    /// Whether `host` (lower-case, as a URL names it) is listed in `fetch.allow`.
    pub fn allows_host(&self, host: &str) -> bool {
        self.hosts
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(host))
    }

    /// Why a caller may not reach `ip`, if it may not: an address that is not public (and not
    /// in an allowed network), or one of this machine's own.
    pub fn refuses(&self, ip: IpAddr) -> Option<&'static str> {
        let ip = canonical(ip);
        if self.networks.iter().any(|network| network.contains(&ip)) {
            return None;
        }
        not_public(ip).or_else(|| {
            self.own
                .iter()
                .any(|own| canonical(*own) == ip)
                .then_some("this server's own address")
        })
    }

    /// Checks a caller's link before anything is sent: `http` or `https`, and a host that is
    /// not a refused address nor a name for this machine (`localhost`). Names are checked
    /// again once resolved (see `guarded`). The error reads after the link's name: `input.x: …`.
    pub fn check_url(&self, url: &Url) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "{}: links are not fetched for callers (only http and https)",
                url.scheme()
            ));
        }
        match url.host() {
            None => Err("the link has no host".into()),
            Some(url::Host::Domain(name)) => {
                let local = name.eq_ignore_ascii_case("localhost")
                    || name.to_ascii_lowercase().ends_with(".localhost");
                if local && !self.allows_host(name) {
                    Err(format!("{name} is this machine{ALLOW_HINT}"))
                } else {
                    Ok(())
                }
            }
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
        }
    }

    /// Why a caller may not reach `ip` (an address a link names or a name resolved to).
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        match self.refuses(ip) {
            Some(why) => Err(format!("{} is {why}{ALLOW_HINT}", canonical(ip))),
            None => Ok(()),
        }
    }

    /// The file a caller's path names, resolved (symlinks and `..`), if it lies under one of
    /// the roots; why not otherwise.
    pub fn check_path(&self, path: &str) -> Result<PathBuf, String> {
        if self.roots.is_empty() {
            return Err(
                "callers may not name files (controller.files.roots lists the directories \
                 they may)"
                    .into(),
            );
        }
        let resolved = self
            .roots
            .iter()
            .map(|root| root.join(path))
            .find_map(|candidate| candidate.canonicalize().ok())
            .ok_or_else(|| format!("no file {path} under controller.files.roots"))?;
        if self.roots.iter().any(|root| resolved.starts_with(root)) {
            Ok(resolved)
        } else {
            Err(format!("{path} is outside controller.files.roots"))
        }
    }
}

/// What a refusal adds: where to allow what was refused.
pub(super) const ALLOW_HINT: &str = "; controller.fetch.allow lists what callers may reach";

/// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`, `::127.0.0.1`, NAT64's
/// `64:ff9b::7f00:1`) as the IPv4 address it reaches.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let [a, b, c, d, e, f, g, h] = v6.segments();
            let embedded = |hi: u16, lo: u16| {
                IpAddr::V4(Ipv4Addr::new(
                    (hi >> 8) as u8,
                    hi as u8,
                    (lo >> 8) as u8,
                    lo as u8,
                ))
            };
            if (a, b, c, d, e, f) == (0, 0, 0, 0, 0, 0) && (g, h) > (0, 1) {
                return embedded(g, h);
            }
            if (a, b, c, d, e, f) == (0x64, 0xff9b, 0, 0, 0, 0) {
                return embedded(g, h);
            }
            ip
        }
        v4 => v4,
    }
}

/// What makes an address other than public, if anything: the ranges of RFC 6890's special
/// registry that no public server answers on.
fn not_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("a loopback address")
            } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
                Some("a private address")
            } else if v4.is_link_local() {
                Some("a link-local address")
            } else if v4.is_unspecified() || a == 0 {
                Some("an unspecified address")
            } else if v4.is_multicast() || v4.is_broadcast() || a >= 240 {
                Some("a multicast or reserved address")
            } else if ((a, b) == (192, 0) && v4.octets()[2] == 0)
                || (a == 198 && (18..20).contains(&b))
            {
                Some("a reserved address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("an unspecified address")
            } else if first & 0xfe00 == 0xfc00 {
                Some("a private address")
            } else if first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
                Some("a link-local address")
            } else if v6.is_multicast() {
                Some("a multicast or reserved address")
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str]) -> Policy {
        let fetch: FetchSettings =
            serde_json::from_value(serde_json::json!({ "allow": allow })).unwrap();
        let mut policy = Policy::new(&fetch, &FileSettings::default(), Path::new(".")).unwrap();
        policy.own = vec!["203.0.113.7".parse().unwrap()];
        policy
    }

    fn verdict(policy: &Policy, url: &str) -> Result<(), String> {
        policy.check_url(&Url::parse(url).unwrap())
    }

    #[test]
    fn a_callers_links_reach_public_addresses_only() {
        let strict = policy(&[]);
        for refused in [
            "file:///etc/hostname",
            "ftp://example.com/x",
            "gopher://example.com/",
            "http://localhost:8080/x",
            "http://LOCALHOST/x",
            "http://api.localhost/x",
            "http://127.0.0.1/",
            "http://127.1/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.5/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::]/",
            "http://[fc00::1]/",
            "http://[fd12:3456::1]/",
            "http://[fe80::1]/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://203.0.113.7/",
        ] {
            assert!(verdict(&strict, refused).is_err(), "{refused}");
        }
        for allowed in [
            "https://example.com/cat.png",
            "http://93.184.215.14/",
            "https://[2606:4700::1111]/",
            "http://images.internal/x.png",
        ] {
            assert_eq!(verdict(&strict, allowed), Ok(()), "{allowed}");
        }
        let open = policy(&["localhost", "127.0.0.0/8", "169.254.169.254", "::1"]);
        for allowed in [
            "http://localhost:8080/x",
            "http://127.0.0.1/",
            "http://127.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://169.254.169.254/",
            "http://[::1]/",
        ] {
            assert_eq!(verdict(&open, allowed), Ok(()), "{allowed}");
        }
        assert!(verdict(&open, "http://10.0.0.5/").is_err());
        assert_eq!(
            verdict(&strict, "file:///etc/hostname"),
            Err("file: links are not fetched for callers (only http and https)".into())
        );
        assert_eq!(
            verdict(&strict, "http://0x7f000001/"),
            Err(
                "127.0.0.1 is a loopback address; controller.fetch.allow lists what callers \
                 may reach"
                    .into()
            )
        );
    }

    #[test]
    fn a_callers_paths_stay_under_the_roots() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("shared");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("cat.txt"), "meow").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "no").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("link.txt")).unwrap();
        let none = Policy::default();
        assert!(none
            .check_path("cat.txt")
            .unwrap_err()
            .contains("controller.files.roots"));
        let files = FileSettings {
            roots: vec![PathBuf::from("shared")],
        };
        let policy = Policy::new(&FetchSettings::default(), &files, dir.path()).unwrap();
        assert_eq!(
            policy.check_path("cat.txt").unwrap(),
            root.canonicalize().unwrap().join("cat.txt")
        );
        let inside = root.join("cat.txt");
        assert!(policy.check_path(inside.to_str().unwrap()).is_ok());
        for refused in ["../secret.txt", "link.txt", "/etc/hostname", "missing.txt"] {
            assert!(policy.check_path(refused).is_err(), "{refused}");
        }
        let missing = FileSettings {
            roots: vec![PathBuf::from("nope")],
        };
        assert!(Policy::new(&FetchSettings::default(), &missing, dir.path())
            .unwrap_err()
            .starts_with("controller.files.roots: nope: "));
    }
}

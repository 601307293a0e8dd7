//! Slowing down whoever guesses keys: after [`FREE_FAILURES`] failed sign-ins or Bearer keys
//! from one client, each further attempt from it must wait, twice as long each time, up to
//! [`MAX_WAIT`]; a success clears the count. IPv6 clients are counted by their /64, which one
//! host can spread its addresses over.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Failures allowed before attempts are slowed.
pub const FREE_FAILURES: u32 = 5;
/// The longest wait between two attempts.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// A client without a failure for this long starts afresh.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// The most clients remembered: past it, those longest quiet are forgotten first.
const MAX_CLIENTS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Failures {
    /// When the next attempt may be made.
    fn next_allowed(&self) -> Instant {
        match self.count.checked_sub(FREE_FAILURES) {
            None => self.last,
            Some(over) => {
                let wait = Duration::from_secs(1u64 << over.min(5)).min(MAX_WAIT);
                self.last + wait
            }
        }
    }
}

/// Failed attempts, by client.
#[derive(Debug, Default)]
pub struct Throttle {
    clients: Mutex<HashMap<IpAddr, Failures>>,
}

impl Throttle {
    /// How long `client` must still wait before its next attempt, if it must.
    pub fn wait(&self, client: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let clients = self.clients.lock();
        let next = clients.get(&key(client))?.next_allowed();
        (next > now).then(|| next - now)
    }

    /// Counts a failed attempt; returns how many there have been in a row.
    pub fn failed(&self, client: IpAddr) -> u32 {
        let now = Instant::now();
        let mut clients = self.clients.lock();
        if clients.len() >= MAX_CLIENTS {
            clients.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
            if clients.len() >= MAX_CLIENTS {
                let mut quiet: Vec<Instant> = clients.values().map(|f| f.last).collect();
                quiet.sort_unstable();
                let cut = quiet[quiet.len() / 2];
                clients.retain(|_, f| f.last > cut);
            }
        }
        let failures = clients.entry(key(client)).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now.duration_since(failures.last) >= FORGET_AFTER {
            failures.count = 0;
        }
        failures.count += 1;
        failures.last = now;
        failures.count
    }

    /// A right key: the client starts afresh.
    pub fn succeeded(&self, client: IpAddr) {
        self.clients.lock().remove(&key(client));
    }
}

/// What a client is counted by: its address, or its /64 for IPv6.
fn key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::V6(segments.into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_after_five_failures_wait_twice_as_long_each_time() {
        let throttle = Throttle::default();
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        for n in 1..=FREE_FAILURES {
            assert_eq!(throttle.wait(client), None, "attempt {n} is free");
            assert_eq!(throttle.failed(client), n);
        }
        let mut expected = Vec::new();
        for _ in 0..7 {
            let wait = throttle.wait(client).expect("a wait").as_secs_f64().round() as u64;
            expected.push(wait);
            throttle.failed(client);
        }
        assert_eq!(expected, [1, 2, 4, 8, 16, 30, 30]);
        // Another client is not held up; a success clears the count.
        assert_eq!(throttle.wait("203.0.113.10".parse().unwrap()), None);
        throttle.succeeded(client);
        assert_eq!(throttle.wait(client), None);
    }

    #[test]
    fn an_ipv6_client_is_one_client_across_its_64() {
        let throttle = Throttle::default();
        for i in 0..FREE_FAILURES + 1 {
            throttle.failed(format!("2001:db8::{i:x}").parse().unwrap());
        }
        assert!(throttle.wait("2001:db8::ffff".parse().unwrap()).is_some());
        assert!(throttle.wait("2001:db8:0:1::1".parse().unwrap()).is_none());
    }
}

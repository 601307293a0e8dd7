//! What the `;url` format reads (spec §2.7). The evaluator is synchronous, so it never fetches:
//! a render notes the URLs it wants here, the caller fetches them (see `crate::fetch`), and
//! renders again with their bodies at hand. A caller's link is noted as such, to be fetched
//! only where the policy lets callers reach (D32).

use std::sync::Mutex;

use crate::fetch::Policy;
use crate::media::Blob;

/// A URL to fetch, and whether a caller's value named it.
pub type Wanted = (String, bool);

/// The bodies fetched for one render, the URLs it still wants, and the policy a caller's
/// `;path` values are read by. Made for every render, and most fetch nothing: it allocates
/// nothing until a URL is wanted.
#[derive(Debug)]
pub struct Fetched<'p> {
    state: Mutex<State>,
    policy: &'p Policy,
}

/// A render wants a few URLs at most: lists, not maps.
#[derive(Debug, Default)]
struct State {
    bodies: Vec<(Wanted, Blob)>,
    wanted: Vec<Wanted>,
}

impl<'p> Fetched<'p> {
    pub fn new(policy: &'p Policy) -> Self {
        Self {
            state: Mutex::default(),
            policy,
        }
    }

    pub(super) fn policy(&self) -> &Policy {
        self.policy
    }

    /// The body fetched for `url`; `None`, and `url` noted as wanted, when it is not here yet.
    pub(super) fn get_or_want(&self, url: &str, caller: bool) -> Option<Blob> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let key = (url.to_string(), caller);
        if let Some((_, blob)) = state.bodies.iter().find(|(wanted, _)| *wanted == key) {
            return Some(blob.clone());
        }
        if !state.wanted.contains(&key) {
            state.wanted.push(key);
        }
        None
    }

    /// The URLs the last render wanted, each once; the list starts again empty.
    pub fn take_wanted(&self) -> Vec<Wanted> {
        std::mem::take(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()).wanted)
    }

    /// Keeps a wanted URL's body for the next render.
    pub fn insert(&self, wanted: Wanted, body: Blob) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.bodies.retain(|(kept, _)| *kept != wanted);
        state.bodies.push((wanted, body));
    }
}

//! What the `;url` format reads (spec §2.7). The evaluator is synchronous, so it never fetches:
//! a render notes the URLs it wants here, the caller fetches them (see `crate::fetch`), and
//! renders again with their bodies at hand.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::media::Blob;

/// The bodies fetched for one render, and the URLs it still wants.
#[derive(Debug, Default)]
pub struct Fetched {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    bodies: HashMap<String, Blob>,
    wanted: Vec<String>,
}

impl Fetched {
    /// The body fetched for `url`; `None`, and `url` noted as wanted, when it is not here yet.
    pub(super) fn get_or_want(&self, url: &str) -> Option<Blob> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(blob) = state.bodies.get(url) {
            return Some(blob.clone());
        }
        if !state.wanted.iter().any(|wanted| wanted == url) {
            state.wanted.push(url.to_string());
        }
        None
    }

    /// The URLs the last render wanted, each once; the list starts again empty.
    pub fn take_wanted(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()).wanted)
    }

    /// Keeps `url`'s body for the next render.
    pub fn insert(&self, url: String, body: Blob) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.bodies.insert(url, body);
    }
}

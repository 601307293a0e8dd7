//! Rendering with the `;url` format (spec §2.7): the bodies a template names are fetched
//! (over HTTP, or read from a `file:` URL) before it is rendered with them. Templates without
//! `;url` render once, as they would anyway. What a caller's values may reach is the
//! [`Policy`]'s to say (D32).

mod guarded;
mod policy;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

pub use policy::Policy;

use crate::binding::{Binding, Fetched, Scope};
use crate::error::RunError;
use crate::media::Blob;
use crate::upstream::{Trust, MAX_BODY};

/// How long one `;url` body may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(120);
/// How many rounds of fetching a render may need: a URL that only a fetched body names
/// needs a second one.
const MAX_ROUNDS: usize = 8;

/// What `;url` and `;path` read with: the policy for a caller's values, and the clients.
pub struct Fetcher {
    policy: Arc<Policy>,
    trust: Trust,
    /// For the config's own links, made when first needed.
    shared: OnceLock<Result<reqwest::Client, RunError>>,
    /// For a caller's links (see `guarded`), made when first needed.
    checked: OnceLock<Result<reqwest::Client, RunError>>,
}

impl Fetcher {
    /// Fetches with `policy` for a caller's links; every client trusts what `trust` says.
    pub fn new(policy: Policy, trust: Trust) -> Self {
        Self {
            policy: Arc::new(policy),
            trust,
            shared: OnceLock::new(),
            checked: OnceLock::new(),
        }
    }

    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// `binding` rendered against `scope`, with the bodies its `;url` formats name.
    pub async fn render(&self, binding: &Binding, scope: Scope<'_>) -> Result<Value, RunError> {
        let fetched = Fetched::new(&self.policy);
        let scope = scope.fetching(&fetched);
        for _ in 0..MAX_ROUNDS {
            let value = binding.render(&scope)?;
            let wanted = fetched.take_wanted();
            if wanted.is_empty() {
                return Ok(value);
            }
            let bodies = futures::future::join_all(
                wanted.iter().map(|(url, caller)| self.get(url, *caller)),
            )
            .await;
            for (wanted, body) in wanted.into_iter().zip(bodies) {
                fetched.insert(wanted, body?);
            }
        }
        Err(RunError::Unsupported(format!(
            "a template needed more than {MAX_ROUNDS} rounds of `;url` fetching"
        )))
    }

    /// The body at `url`: a `file:` URL's file, or what a GET answers (2xx only, at most
    /// 16 MiB), typed by its `Content-Type` and named by the URL's last segment. A caller's
    /// link (`caller`) must be one the policy lets callers reach.
    pub async fn get(&self, url: &str, caller: bool) -> Result<Blob, RunError> {
        let failed = |reason: String| RunError::Fetch {
            url: url.to_string(),
            reason,
        };
        let refused = |reason: String| RunError::NotAllowed {
            what: url.to_string(),
            reason,
        };
        let parsed = reqwest::Url::parse(url).map_err(|err| failed(err.to_string()))?;
        if caller {
            self.policy.check_url(&parsed).map_err(refused)?;
        }
        let name = parsed
            .path_segments()
            .and_then(|mut segments| segments.next_back())
            .filter(|name| !name.is_empty())
            .map(|name| {
                percent_encoding::percent_decode_str(name)
                    .decode_utf8_lossy()
                    .into_owned()
            });
        match parsed.scheme() {
            "file" => {
                let path = parsed
                    .to_file_path()
                    .map_err(|()| failed("not a local file".into()))?;
                let bytes = tokio::fs::read(&path)
                    .await
                    .map_err(|err| failed(err.to_string()))?;
                Ok(Blob {
                    media_type: crate::media::guess_type(&path.to_string_lossy()),
                    name,
                    bytes,
                })
            }
            "http" | "https" => {
                let client = if caller {
                    self.checked()?
                } else {
                    self.shared()?
                };
                let fetch = async {
                    let response = client.get(parsed).send().await.map_err(|err| {
                        match guarded::refusal(&err) {
                            Some(reason) => refused(reason),
                            None => failed(err.to_string()),
                        }
                    })?;
                    let status = response.status();
                    if !status.is_success() {
                        return Err(failed(format!("HTTP {}", status.as_u16())));
                    }
                    let content_type = response
                        .headers()
                        .get(reqwest::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    let mut bytes = Vec::new();
                    let mut chunks = response.bytes_stream();
                    while let Some(chunk) = chunks.next().await {
                        bytes.extend_from_slice(&chunk.map_err(|err| failed(err.to_string()))?);
                        if bytes.len() > MAX_BODY {
                            return Err(failed(format!("larger than {} MiB", MAX_BODY >> 20)));
                        }
                    }
                    let mut blob = Blob::received(&content_type, name, bytes);
                    // An untyped body is typed by its name, if it has one (`cat.png`).
                    if let (true, Some(name)) = (content_type.is_empty(), &blob.name) {
                        blob.media_type = crate::media::guess_type(name);
                    }
                    Ok(blob)
                };
                tokio::time::timeout(FETCH_TIMEOUT, fetch)
                    .await
                    .map_err(|_| {
                        failed(format!("no answer within {} s", FETCH_TIMEOUT.as_secs()))
                    })?
            }
            other => Err(failed(format!(
                "`{other}:` URLs cannot be fetched (http, https or file)"
            ))),
        }
    }

    /// The client for a caller's links.
    fn checked(&self) -> Result<&reqwest::Client, RunError> {
        self.checked
            .get_or_init(|| guarded::client(Arc::clone(&self.policy), &self.trust))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// One connection pool for every `;url` fetch of the config's own links.
    fn shared(&self) -> Result<&reqwest::Client, RunError> {
        self.shared
            .get_or_init(|| self.trust.client())
            .as_ref()
            .map_err(Clone::clone)
    }
}

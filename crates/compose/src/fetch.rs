//! Rendering with the `;url` format (spec §2.7): the bodies a template names are fetched
//! (over HTTP, or read from a `file:` URL) before it is rendered with them. Templates without
//! `;url` render once, as they would anyway.

use std::sync::OnceLock;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use crate::binding::{Binding, Fetched, Scope};
use crate::component::http_client::MAX_SIZE;
use crate::error::RunError;
use crate::media::Blob;
use crate::upstream;

/// How long one `;url` body may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(120);
/// How many rounds of fetching a render may need: a URL that only a fetched body names
/// needs a second one.
const MAX_ROUNDS: usize = 8;

/// `binding` rendered against `scope`, with the bodies its `;url` formats name.
pub async fn render(binding: &Binding, scope: Scope<'_>) -> Result<Value, RunError> {
    let fetched = Fetched::default();
    let scope = scope.fetching(&fetched);
    for _ in 0..MAX_ROUNDS {
        let value = binding.render(&scope)?;
        let wanted = fetched.take_wanted();
        if wanted.is_empty() {
            return Ok(value);
        }
        let bodies = futures::future::join_all(wanted.iter().map(|url| get(url))).await;
        for (url, body) in wanted.into_iter().zip(bodies) {
            fetched.insert(url, body?);
        }
    }
    Err(RunError::Unsupported(format!(
        "a template needed more than {MAX_ROUNDS} rounds of `;url` fetching"
    )))
}

/// The body at `url`: a `file:` URL's file, or what a GET answers (2xx only, at most
/// 16 MiB), typed by its `Content-Type` and named by the URL's last segment.
pub async fn get(url: &str) -> Result<Blob, RunError> {
    let failed = |reason: String| RunError::Fetch {
        url: url.to_string(),
        reason,
    };
    let parsed = reqwest::Url::parse(url).map_err(|err| failed(err.to_string()))?;
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
            let fetch = async {
                let response = client()?
                    .get(parsed)
                    .send()
                    .await
                    .map_err(|err| failed(err.to_string()))?;
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
                    if bytes.len() > MAX_SIZE {
                        return Err(failed(format!("larger than {} MiB", MAX_SIZE >> 20)));
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
                .map_err(|_| failed(format!("no answer within {} s", FETCH_TIMEOUT.as_secs())))?
        }
        other => Err(failed(format!(
            "`{other}:` URLs cannot be fetched (http, https or file)"
        ))),
    }
}

/// One connection pool for every `;url` fetch.
fn client() -> Result<&'static reqwest::Client, RunError> {
    static CLIENT: OnceLock<Result<reqwest::Client, RunError>> = OnceLock::new();
    CLIENT
        .get_or_init(upstream::client)
        .as_ref()
        .map_err(Clone::clone)
}

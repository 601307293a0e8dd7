//! The built site (WASM, JS, CSS and `public/`), embedded in the binary so that
//! `model-compose` serves a complete UI from any directory.
//!
//! The release site is precompressed at build time (`cargo leptos build --precompress`: a
//! `.br` and a `.gz` beside each file): a browser that accepts brotli or gzip gets those bytes
//! as they are, so the first load moves about a third of the WASM's size and costs the server
//! no compression. Each answer carries an `ETag` (the hash of the bytes sent), so a reload asks
//! `If-None-Match` and gets `304 Not Modified`.

use std::borrow::Cow;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

/// The site of the same kind as this build (see `build.rs`).
#[derive(Embed)]
#[cfg_attr(debug_assertions, folder = "target/site/debug/")]
#[cfg_attr(not(debug_assertions), folder = "target/site/release/")]
struct Site;

/// Serves an embedded file by its URL path, or 404.
pub async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    respond(path, &headers, |path| {
        Site::get(path).map(|file| Asset {
            hash: file.metadata.sha256_hash(),
            mime: file.metadata.mimetype().to_string(),
            bytes: file.data,
        })
    })
}

/// One stored file: its bytes, their hash, its media type.
struct Asset {
    bytes: Cow<'static, [u8]>,
    hash: [u8; 32],
    mime: String,
}

/// The answer to a request for `path` with `headers`, the files read with `get`: the smallest
/// stored encoding the client accepts, or 304 when it has those bytes already.
fn respond(path: &str, headers: &HeaderMap, get: impl Fn(&str) -> Option<Asset>) -> Response {
    let Some(file) = get(path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let accepted = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .map(accepted_encodings)
        .unwrap_or_default();
    let size = file.bytes.len();
    let compressed = accepted.into_iter().find_map(|encoding| {
        let variant = get(&format!("{path}.{}", encoding.suffix()))?;
        (variant.bytes.len() < size).then_some((variant, encoding))
    });
    let mime = HeaderValue::from_str(&file.mime).ok();
    let (sent, encoding) = match compressed {
        Some((variant, encoding)) => (variant, Some(encoding)),
        None => (file, None),
    };
    let etag = etag(&sent.hash);
    let mut response = match fresh(headers, &etag) {
        true => StatusCode::NOT_MODIFIED.into_response(),
        false => sent.bytes.into_owned().into_response(),
    };
    let answer = response.headers_mut();
    if let Some(mime) = mime {
        answer.insert(header::CONTENT_TYPE, mime);
    }
    if let Some(encoding) = encoding {
        answer.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(encoding.name()),
        );
    }
    // Asked again on every load (a new build has new bytes): answered 304 while they match.
    answer.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    answer.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        answer.insert(header::ETAG, etag);
    }
    response
}

/// A stored compressed encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Brotli,
    Gzip,
}

impl Encoding {
    /// Its name in `Accept-Encoding` and `Content-Encoding`.
    fn name(self) -> &'static str {
        match self {
            Self::Brotli => "br",
            Self::Gzip => "gzip",
        }
    }

    /// The suffix of its file beside the original.
    fn suffix(self) -> &'static str {
        match self {
            Self::Brotli => "br",
            Self::Gzip => "gz",
        }
    }
}

/// The stored encodings an `Accept-Encoding` value allows, the client's preferred first
/// (brotli first among equals: it is the smaller); `q=0` refuses one, `*` names both.
fn accepted_encodings(value: &str) -> Vec<Encoding> {
    let mut weights = [(Encoding::Brotli, None), (Encoding::Gzip, None)];
    let mut any = None;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let quality = parts
            .find_map(|param| {
                let (key, value) = param.split_once('=')?;
                (key.trim().eq_ignore_ascii_case("q")).then(|| value.trim().parse::<f32>().ok())
            })
            .flatten()
            .unwrap_or(1.0);
        match name.as_str() {
            "*" => any = Some(quality),
            "br" => weights[0].1 = Some(quality),
            "gzip" | "x-gzip" => weights[1].1 = Some(quality),
            _ => {}
        }
    }
    let mut allowed: Vec<(Encoding, f32)> = weights
        .into_iter()
        .filter_map(|(encoding, quality)| Some((encoding, quality.or(any)?)))
        .filter(|(_, quality)| *quality > 0.0)
        .collect();
    // Stable: brotli stays first among equals.
    allowed.sort_by(|a, b| b.1.total_cmp(&a.1));
    allowed.into_iter().map(|(encoding, _)| encoding).collect()
}

/// The strong entity tag of bytes whose SHA-256 is `hash`.
fn etag(hash: &[u8; 32]) -> String {
    let hex: String = hash[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("\"{hex}\"")
}

/// Whether the client holds the bytes tagged `etag` (its `If-None-Match` names them or `*`).
fn fresh(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A site of one WASM file with its brotli and gzip variants (the gzip larger than the
    /// brotli, as they are).
    fn site(path: &str) -> Option<Asset> {
        let (bytes, seed): (&'static [u8], u8) = match path {
            "pkg/app.wasm" => (&[0; 100], 1),
            "pkg/app.wasm.br" => (&[1; 30], 2),
            "pkg/app.wasm.gz" => (&[2; 40], 3),
            "tiny.txt" => (b"hi", 4),
            "tiny.txt.br" => (b"longer than hi", 5),
            _ => return None,
        };
        Some(Asset {
            bytes: Cow::Borrowed(bytes),
            hash: [seed; 32],
            mime: "application/wasm".into(),
        })
    }

    fn get(path: &str, headers: &[(header::HeaderName, &str)]) -> Response {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        respond(path, &map, site)
    }

    fn header(response: &Response, name: header::HeaderName) -> Option<&str> {
        response.headers().get(name).map(|v| v.to_str().unwrap())
    }

    async fn body_len(response: Response) -> usize {
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .len()
    }

    #[tokio::test]
    async fn a_browser_gets_the_brotli_bytes_with_their_encoding_and_type() {
        let response = get(
            "pkg/app.wasm",
            &[(header::ACCEPT_ENCODING, "gzip, deflate, br, zstd")],
        );
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, header::CONTENT_ENCODING), Some("br"));
        assert_eq!(
            header(&response, header::CONTENT_TYPE),
            Some("application/wasm")
        );
        assert_eq!(header(&response, header::VARY), Some("accept-encoding"));
        assert_eq!(body_len(response).await, 30);
    }

    #[tokio::test]
    async fn preferences_and_refusals_choose_the_encoding() {
        let cases = [
            ("gzip", Some("gzip"), 40),
            ("br;q=0.5, gzip", Some("gzip"), 40),
            ("br;q=0, *", Some("gzip"), 40),
            ("*", Some("br"), 30),
            ("deflate", None, 100),
            ("br;q=0, gzip;q=0", None, 100),
        ];
        for (accept, encoding, len) in cases {
            let response = get("pkg/app.wasm", &[(header::ACCEPT_ENCODING, accept)]);
            assert_eq!(
                header(&response, header::CONTENT_ENCODING),
                encoding,
                "{accept}"
            );
            assert_eq!(body_len(response).await, len, "{accept}");
        }
        let plain = get("pkg/app.wasm", &[]);
        assert_eq!(header(&plain, header::CONTENT_ENCODING), None);
        assert_eq!(body_len(plain).await, 100);
    }

    #[tokio::test]
    async fn a_variant_no_smaller_than_the_file_is_not_sent() {
        let response = get("tiny.txt", &[(header::ACCEPT_ENCODING, "br")]);
        assert_eq!(header(&response, header::CONTENT_ENCODING), None);
        assert_eq!(body_len(response).await, 2);
    }

    #[tokio::test]
    async fn a_client_holding_the_bytes_gets_304_and_another_encoding_does_not_match() {
        let first = get("pkg/app.wasm", &[(header::ACCEPT_ENCODING, "br")]);
        let tag = header(&first, header::ETAG).unwrap().to_string();
        assert_eq!(tag, format!("\"{}\"", "02".repeat(16)));
        let again = get(
            "pkg/app.wasm",
            &[
                (header::ACCEPT_ENCODING, "br"),
                (header::IF_NONE_MATCH, &tag),
            ],
        );
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header(&again, header::ETAG), Some(tag.as_str()));
        assert_eq!(body_len(again).await, 0);
        let other = get(
            "pkg/app.wasm",
            &[
                (header::ACCEPT_ENCODING, "gzip"),
                (header::IF_NONE_MATCH, &tag),
            ],
        );
        assert_eq!(other.status(), StatusCode::OK);
    }

    #[test]
    fn an_unknown_path_is_404() {
        assert_eq!(get("nope.js", &[]).status(), StatusCode::NOT_FOUND);
    }
}

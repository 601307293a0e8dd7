//! Media: types as `Content-Type` headers spell them, and bytes inside values.
//!
//! Values in templates are JSON. Bytes that a template looks into (an upstream's audio read
//! with `${response as base64}`, an uploaded file) travel as one string, a data URI:
//! `data:<type>[;name=<file>];base64,<payload>`. That is what a browser shows directly, what
//! a JSON client can send for a file input, and what the history can keep. Bytes that nothing
//! looks into are never turned into one: they stream through as they came.

use base64::Engine as _;

/// Bytes with their media type and, when known, their file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: String,
    pub name: Option<String>,
    pub bytes: Vec<u8>,
}

impl Blob {
    /// Bytes as an upstream sent them: their type from its `Content-Type` (parameters
    /// dropped; none: `application/octet-stream`), their name from `Content-Disposition`.
    pub fn received(content_type: &str, name: Option<String>, bytes: Vec<u8>) -> Self {
        Blob {
            media_type: media_type(content_type)
                .unwrap_or_else(|| "application/octet-stream".into()),
            name,
            bytes,
        }
    }

    /// The data URI of these bytes, with their name as a `name` parameter.
    pub fn to_data_uri(&self) -> String {
        let mut uri = format!("data:{}", self.media_type);
        if let Some(name) = &self.name {
            uri.push_str(";name=");
            uri.extend(percent_encoding::utf8_percent_encode(name, PARAMETER));
        }
        uri.push_str(";base64,");
        base64::engine::general_purpose::STANDARD.encode_string(&self.bytes, &mut uri);
        uri
    }

    /// The bytes of a data URI that says `;base64` (the form this engine writes); `None` for
    /// any other string, which stays text.
    pub fn from_data_uri(text: &str) -> Option<Blob> {
        let (header, payload) = text.strip_prefix("data:")?.split_once(',')?;
        let mut params = header.split(';');
        let media_type = params.next().unwrap_or_default().trim();
        let mut name = None;
        let mut base64 = false;
        for param in params {
            match param.trim().split_once('=') {
                Some(("name" | "filename", value)) => {
                    name = Some(
                        percent_encoding::percent_decode_str(value)
                            .decode_utf8_lossy()
                            .into_owned(),
                    )
                }
                None if param.trim().eq_ignore_ascii_case("base64") => base64 = true,
                _ => {}
            }
        }
        if !base64 {
            return None;
        }
        let bytes = decode_base64(payload).ok()?;
        Some(Blob {
            media_type: if media_type.is_empty() {
                "application/octet-stream".into()
            } else {
                media_type.to_ascii_lowercase()
            },
            name,
            bytes,
        })
    }

    /// The media type's file extension (`mp3` for `audio/mpeg`), for a file name to send.
    pub fn extension(&self) -> &'static str {
        const USUAL: [(&str, &str); 6] = [
            ("audio/mpeg", "mp3"),
            ("audio/wav", "wav"),
            ("image/jpeg", "jpg"),
            ("text/plain", "txt"),
            ("video/mp4", "mp4"),
            ("application/octet-stream", "bin"),
        ];
        let usual = USUAL.iter().find(|(t, _)| *t == self.media_type);
        usual.map(|(_, ext)| *ext).unwrap_or_else(|| {
            mime_guess::get_mime_extensions_str(&self.media_type)
                .and_then(|all| all.first().copied())
                .unwrap_or("bin")
        })
    }

    /// The name to send the bytes under: their own, else `file.<extension>`.
    pub fn file_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("file.{}", self.extension()))
    }
}

/// Bytes as standard, padded base64 (what `as base64` writes).
pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Base64 as people paste it: standard or URL-safe alphabet, padded or not, with whitespace.
/// Text without whitespace (every data URI this engine writes) is decoded where it is.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);
    let bytes = text.as_bytes();
    let spaced = memchr::memchr3(b' ', b'\n', b'\r', bytes).is_some()
        || memchr::memchr2(b'\t', b'\x0c', bytes).is_some();
    let compact: std::borrow::Cow<[u8]> = if spaced {
        bytes
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect::<Vec<u8>>()
            .into()
    } else {
        bytes.into()
    };
    STANDARD
        .decode(&compact)
        .or_else(|_| URL_SAFE.decode(&compact))
}

/// The media type a file's name suggests (`audio/mpeg` for `a.mp3`).
pub fn guess_type(path: &str) -> String {
    mime_guess::from_path(path)
        .first_raw()
        .unwrap_or("application/octet-stream")
        .to_string()
}

/// What a data URI parameter may not hold as it is.
const PARAMETER: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'-')
    .remove(b'_');

/// The media type of a `Content-Type` value, lower-cased and without its parameters
/// (`text/event-stream` from `Text/Event-Stream; charset=utf-8`); `None` when it is not one.
pub fn media_type(content_type: &str) -> Option<String> {
    content_type
        .trim()
        .parse::<mime::Mime>()
        .ok()
        .map(|mime| mime.essence_str().to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_and_case_are_dropped() {
        assert_eq!(
            media_type("Text/Event-Stream; charset=utf-8").as_deref(),
            Some("text/event-stream")
        );
        assert_eq!(
            media_type(" application/json ").as_deref(),
            Some("application/json")
        );
        assert_eq!(media_type(""), None);
        assert_eq!(media_type("json"), None);
    }

    #[test]
    fn bytes_travel_as_data_uris_and_back() {
        let blob = Blob {
            media_type: "audio/mpeg".into(),
            name: Some("my speech.mp3".into()),
            bytes: vec![0xff, 0xfb, 0x90, 0x00, b'\n'],
        };
        let uri = blob.to_data_uri();
        assert_eq!(uri, "data:audio/mpeg;name=my%20speech.mp3;base64,//uQAAo=");
        assert_eq!(Blob::from_data_uri(&uri), Some(blob));
        let plain = Blob::from_data_uri("data:,hello");
        assert_eq!(plain, None, "only base64 data URIs are bytes");
        assert_eq!(Blob::from_data_uri("hello"), None);
        let untyped = Blob::from_data_uri("data:;base64,aGk").unwrap();
        assert_eq!(
            (
                untyped.media_type.as_str(),
                untyped.bytes.as_slice(),
                untyped.file_name()
            ),
            (
                "application/octet-stream",
                b"hi".as_slice(),
                "file.bin".to_string()
            )
        );
        assert_eq!(decode_base64("aGk_").unwrap(), b"hi?".to_vec());
        assert_eq!(guess_type("x/cat.PNG"), "image/png");
    }
}

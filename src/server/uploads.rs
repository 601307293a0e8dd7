//! Files chosen in the web UI, held until a run takes them. The browser sends a file once, as
//! `multipart/form-data` to the `upload` server function, and gets back a short reference
//! (`upload:ID`) that the run's input carries in place of the file: large files never travel
//! as base64 inside JSON. Each file is capped, the whole store too, and files not used within
//! [`KEEP`] are forgotten.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;

use compose::media::Blob;

use crate::server_fns::MAX_UPLOAD as MAX_FILE;
/// The most the store holds at once.
const MAX_TOTAL: usize = 256 * 1024 * 1024;
/// How long an unused upload is kept.
const KEEP: Duration = Duration::from_secs(30 * 60);
/// How a run's input names an upload.
const PREFIX: &str = "upload:";

#[derive(Default)]
pub struct Uploads {
    files: Mutex<HashMap<String, (Instant, Blob)>>,
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the file is larger than {} MiB", MAX_FILE / 1024 / 1024)]
    TooLarge,
    #[error("too many files are waiting to be used; run the workflow or try again later")]
    Full,
    #[error("the file {0} is no longer here (uploads are kept {1} minutes); choose it again")]
    Gone(String, u64),
}

impl Uploads {
    /// Keeps a file; returns its reference.
    pub fn put(&self, blob: Blob) -> Result<String, UploadError> {
        if blob.bytes.len() > MAX_FILE {
            return Err(UploadError::TooLarge);
        }
        let mut files = self.files.lock();
        files.retain(|_, (at, _)| at.elapsed() < KEEP);
        let total: usize = files.values().map(|(_, b)| b.bytes.len()).sum();
        if total + blob.bytes.len() > MAX_TOTAL {
            return Err(UploadError::Full);
        }
        let id = ulid::Ulid::new().to_string();
        files.insert(id.clone(), (Instant::now(), blob));
        Ok(format!("{PREFIX}{id}"))
    }

    /// The input with every top-level `upload:ID` replaced by that file's bytes (a data URI).
    pub fn resolve(&self, input: Value) -> Result<Value, UploadError> {
        let Value::Object(mut fields) = input else {
            return Ok(input);
        };
        let files = self.files.lock();
        for value in fields.values_mut() {
            let Some(id) = value.as_str().and_then(|v| v.strip_prefix(PREFIX)) else {
                continue;
            };
            let (_, blob) = files
                .get(id)
                .filter(|(at, _)| at.elapsed() < KEEP)
                .ok_or_else(|| UploadError::Gone(id.to_string(), KEEP.as_secs() / 60))?;
            *value = Value::String(blob.to_data_uri());
        }
        Ok(Value::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_become_the_files_bytes() {
        let uploads = Uploads::default();
        let blob = Blob {
            media_type: "image/png".into(),
            name: Some("cat.png".into()),
            bytes: vec![1, 2, 3],
        };
        let reference = uploads.put(blob.clone()).unwrap();
        let input = json!({"image": reference, "prompt": "upload:not-a-file?", "n": 1});
        let err = uploads.resolve(input).unwrap_err();
        assert!(err.to_string().contains("no longer here"), "{err}");
        let input = json!({"image": reference, "prompt": "hat", "n": 1});
        assert_eq!(
            uploads.resolve(input).unwrap(),
            json!({"image": blob.to_data_uri(), "prompt": "hat", "n": 1})
        );
        let huge = Blob {
            bytes: vec![0; MAX_FILE + 1],
            ..blob
        };
        assert!(matches!(uploads.put(huge), Err(UploadError::TooLarge)));
    }
}

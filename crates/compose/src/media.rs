//! Media types, as `Content-Type` headers spell them.

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
}

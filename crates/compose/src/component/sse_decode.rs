//! Upstream Server-Sent Events, decoded by `eventsource-stream` (WHATWG rules: CRLF, LF and
//! CR line ends, multi-line `data:`, comments, `event:`/`id:`/`retry:` lines). Only the data
//! of each event matters here; an event cut off by the end of the body is dropped.

use eventsource_stream::{EventStreamError, Eventsource};
use futures::{Stream, StreamExt};

/// The data of every event in a byte stream, in order.
pub fn event_data<S, B, E>(bytes: S) -> impl Stream<Item = Result<String, String>>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    flush_trailing_cr(bytes)
        .eventsource()
        .map(|event| match event {
            Ok(event) => Ok(event.data),
            Err(EventStreamError::Utf8(err)) => {
                Err(format!("invalid UTF-8 in the event stream: {err}"))
            }
            Err(EventStreamError::Parser(err)) => Err(format!("malformed event stream: {err}")),
            Err(EventStreamError::Transport(err)) => Err(err.to_string()),
        })
}

/// A body that ends in `\r` leaves the decoder waiting to see whether `\n` follows; end the
/// line so that an event closed by `\r\r` is not lost.
fn flush_trailing_cr<S, B, E>(bytes: S) -> impl Stream<Item = Result<Vec<u8>, E>>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    async_stream::stream! {
        let mut ends_in_cr = false;
        for await piece in bytes {
            let piece = piece.map(|b| b.as_ref().to_vec());
            if let Ok(bytes) = &piece {
                if let Some(last) = bytes.last() {
                    ends_in_cr = *last == b'\r';
                }
            }
            yield piece;
        }
        if ends_in_cr {
            yield Ok(b"\n".to_vec());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `body` delivered in pieces of `size` bytes.
    async fn decode(body: &str, size: usize) -> Vec<String> {
        let pieces: Vec<Result<Vec<u8>, String>> = body
            .as_bytes()
            .chunks(size)
            .map(|c| Ok(c.to_vec()))
            .collect();
        event_data(futures::stream::iter(pieces))
            .map(Result::unwrap)
            .collect()
            .await
    }

    #[tokio::test]
    async fn decodes_the_reference_transcript_in_any_piece_size() {
        // spec §11: the stream delivered in 7-byte pieces; the CRLF event is not left with a
        // stray "\r" (the original's defect), and the unterminated last event is dropped.
        let body = "data: one\n\ndata: two\r\n\r\n: comment\n\nevent: foo\nid: 3\ndata: three\ndata: more\n\n\
                    data\n\ndata:nospace\n\nretry: 10\n\ndata: [DONE]\n\ndata: trailing-no-terminator";
        for size in [1, 2, 7, 64, body.len()] {
            assert_eq!(
                decode(body, size).await,
                ["one", "two", "three\nmore", "", "nospace", "[DONE]"],
                "piece size {size}"
            );
        }
    }

    #[tokio::test]
    async fn handles_cr_line_ends_and_leading_spaces() {
        assert_eq!(
            decode("data:  two spaces\r\rdata: x\r\r", 3).await,
            [" two spaces", "x"]
        );
    }

    #[tokio::test]
    async fn reports_transport_errors() {
        let pieces: Vec<Result<&[u8], &str>> = vec![Ok(b"data: a\n\n"), Err("connection reset")];
        let out: Vec<_> = event_data(futures::stream::iter(pieces)).collect().await;
        assert_eq!(
            out,
            [Ok("a".to_string()), Err("connection reset".to_string())]
        );
    }

    mod properties {
        use futures::StreamExt;
        use proptest::prelude::*;

        use super::super::event_data;

        fn decode_in(bytes: &[u8], size: usize) -> Vec<Result<String, String>> {
            let pieces: Vec<Result<Vec<u8>, String>> =
                bytes.chunks(size.max(1)).map(|c| Ok(c.to_vec())).collect();
            futures::executor::block_on(event_data(futures::stream::iter(pieces)).collect())
        }

        /// Bytes made mostly of SSE syntax.
        fn sse_bytes() -> impl Strategy<Value = Vec<u8>> {
            let pieces = prop::sample::select(vec![
                "data:", "data: ", "event: x", "id: 1", "retry: 5", ":", "\n", "\r\n", "\r", "x",
                " ", "{}", "[DONE]", "é",
            ]);
            prop::collection::vec(pieces, 0..60).prop_map(|parts| parts.concat().into_bytes())
        }

        proptest! {
            #[test]
            fn never_panics_and_ignores_how_the_body_is_cut(bytes in sse_bytes(), size in 1usize..16) {
                prop_assert_eq!(decode_in(&bytes, size), decode_in(&bytes, bytes.len().max(1)));
            }

            #[test]
            fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300), size in 1usize..32) {
                let _ = decode_in(&bytes, size);
            }
        }
    }
}

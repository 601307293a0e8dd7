//! Server-Sent Events decoded as the WHATWG rules say (CRLF, LF and CR line ends, multi-line
//! `data:`, comments, `event:`/`id:`/`retry:` lines), in time linear in the size of the body,
//! however it is cut, and with a cap on the size of one event; an event cut off by the end of
//! the body is dropped. The one decoder: the http-client reads upstreams with it, and the web
//! UI (in the browser, which is why this module needs no runtime) reads the server's stream.
//!
//! Written here rather than taken from a crate: the one used before (eventsource-stream)
//! parses its whole buffer again for every piece that arrives, which is quadratic in the size
//! of an event, and has no cap.

/// Room a decoder keeps for its next line: a token's chunk fits.
const LINE_ROOM: usize = 1024;

/// One event: its name (`event:`), if any, and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: Option<String>,
    pub data: String,
}

/// The data of every event in a byte stream, in order; an event (or a line) larger than
/// `max_event` bytes is an error, and ends the stream.
#[cfg(feature = "runtime")]
pub fn event_data<S, B, E>(
    bytes: S,
    max_event: usize,
) -> impl futures::Stream<Item = Result<String, String>>
where
    S: futures::Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    async_stream::stream! {
        let mut decoder = Decoder::new(max_event);
        for await piece in bytes {
            match piece {
                Ok(piece) => {
                    let mut failed = false;
                    for event in decoder.feed(piece.as_ref()) {
                        failed |= event.is_err();
                        yield event.map(|event| event.data);
                    }
                    if failed {
                        return;
                    }
                }
                Err(err) => {
                    yield Err(err.to_string());
                    return;
                }
            }
        }
    }
}

/// Decodes a body piece by piece; keeps what is left of an unfinished line or event.
pub struct Decoder {
    max_event: usize,
    /// The line read so far.
    line: Vec<u8>,
    /// The last line ended with `\r`: a `\n` right after it belongs to it.
    after_cr: bool,
    /// The event's name, if it had an `event:` line.
    name: Option<String>,
    /// The event's data so far, one `\n` after each `data:` line.
    data: String,
    /// Whether the event has had a `data` line (an empty one counts).
    has_data: bool,
}

impl Decoder {
    /// A decoder refusing events larger than `max_event` bytes.
    pub fn new(max_event: usize) -> Self {
        Self {
            max_event,
            line: Vec::new(),
            after_cr: false,
            name: None,
            data: String::new(),
            has_data: false,
        }
    }

    /// Reads a piece of the body; returns the events it completed (an error ends the body).
    /// The list is the caller's, and gone once read: kept here, it would hold the room of
    /// the largest piece (hundreds of events when a stream falls behind) while the body waits.
    pub fn feed(&mut self, mut piece: &[u8]) -> Vec<Result<Event, String>> {
        let mut events = Vec::new();
        if self.after_cr {
            self.after_cr = false;
            piece = piece.strip_prefix(b"\n").unwrap_or(piece);
        }
        while let Some(end) = memchr::memchr2(b'\n', b'\r', piece) {
            if let Err(err) = self.take(&piece[..end]) {
                events.push(Err(err));
                return events;
            }
            let crlf = piece[end] == b'\r' && piece.get(end + 1) == Some(&b'\n');
            self.after_cr = piece[end] == b'\r' && end + 1 == piece.len();
            piece = &piece[end + if crlf { 2 } else { 1 }..];
            match self.end_line() {
                Ok(Some(event)) => events.push(Ok(event)),
                Ok(None) => {}
                Err(err) => {
                    events.push(Err(err));
                    return events;
                }
            }
        }
        if let Err(err) = self.take(piece) {
            events.push(Err(err));
        }
        events
    }

    /// Adds bytes to the current line, within the cap.
    fn take(&mut self, bytes: &[u8]) -> Result<(), String> {
        if self.line.len() + bytes.len() + self.data.len() > self.max_event {
            return Err(self.too_large());
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn too_large(&self) -> String {
        format!(
            "an event of the stream is larger than {} bytes (the action's max_event_size)",
            self.max_event
        )
    }

    /// The line is complete: a blank one ends the event, a `data` line adds to it.
    fn end_line(&mut self) -> Result<Option<Event>, String> {
        if self.line.is_empty() {
            let name = self.name.take();
            if !std::mem::take(&mut self.has_data) {
                return Ok(None);
            }
            let mut data = std::mem::take(&mut self.data);
            data.pop();
            return Ok(Some(Event { name, data }));
        }
        // The line's buffer goes back for the next line once its field is read.
        let mut line = std::mem::take(&mut self.line);
        let read = self.field(&line);
        line.clear();
        // A long line's room is not kept for the whole body.
        line.shrink_to(LINE_ROOM);
        self.line = line;
        read.map(|()| None)
    }

    /// Reads one non-blank line: a `data` line adds to the event, `event` names it.
    fn field(&mut self, line: &[u8]) -> Result<(), String> {
        let line = std::str::from_utf8(line)
            .map_err(|err| format!("invalid UTF-8 in the event stream: {err}"))?;
        let (field, value) = match line.split_once(':') {
            Some(("", _)) => return Ok(()),
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.data.len() + value.len() + 1 > self.max_event {
                    return Err(self.too_large());
                }
                self.has_data = true;
                // One allocation for a new event's data, not one for the text and one more
                // for its line end.
                self.data.reserve(value.len() + 1);
                self.data.push_str(value);
                self.data.push('\n');
            }
            "event" => self.name = Some(value.to_string()),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(all(test, feature = "runtime"))]
mod tests {
    use super::*;
    use futures::StreamExt;

    /// Decodes `body` delivered in pieces of `size` bytes.
    async fn decode(body: &str, size: usize) -> Vec<String> {
        let pieces: Vec<Result<Vec<u8>, String>> = body
            .as_bytes()
            .chunks(size)
            .map(|c| Ok(c.to_vec()))
            .collect();
        event_data(futures::stream::iter(pieces), 1 << 20)
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

    #[test]
    fn a_long_event_does_not_keep_its_room_for_the_rest_of_the_body() {
        let mut decoder = Decoder::new(1 << 20);
        let long = format!("data: {}\n\n", "x".repeat(100_000));
        let events = decoder.feed(long.as_bytes());
        assert_eq!(
            events,
            [Ok(Event {
                name: None,
                data: "x".repeat(100_000)
            })]
        );
        assert!(decoder.line.capacity() <= LINE_ROOM);
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
        let out: Vec<_> = event_data(futures::stream::iter(pieces), 1 << 20)
            .collect()
            .await;
        assert_eq!(
            out,
            [Ok("a".to_string()), Err("connection reset".to_string())]
        );
    }

    #[tokio::test]
    async fn an_event_over_the_cap_is_an_error_whatever_its_pieces() {
        let body = format!("data: ok\n\ndata: {}\n\ndata: never\n\n", "x".repeat(100));
        for size in [1, 7, body.len()] {
            let pieces: Vec<Result<Vec<u8>, String>> = body
                .as_bytes()
                .chunks(size)
                .map(|c| Ok(c.to_vec()))
                .collect();
            let out: Vec<_> = event_data(futures::stream::iter(pieces), 64)
                .collect()
                .await;
            assert_eq!(out.len(), 2, "piece size {size}");
            assert_eq!(out[0], Ok("ok".to_string()));
            assert!(
                out[1]
                    .as_ref()
                    .is_err_and(|e| e.contains("larger than 64 bytes")),
                "{out:?}"
            );
        }
    }

    #[tokio::test]
    async fn decoding_is_linear_in_the_size_of_an_event() {
        // 8 MiB in one event without a terminator, in 8 KiB pieces: the old decoder took
        // seconds on far less; this is a few milliseconds of work.
        let piece = vec![b'x'; 8192];
        let mut pieces: Vec<Result<Vec<u8>, String>> = vec![Ok(b"data: ".to_vec())];
        pieces.extend((0..1024).map(|_| Ok(piece.clone())));
        pieces.push(Ok(b"\n\n".to_vec()));
        let started = std::time::Instant::now();
        let out: Vec<_> = event_data(futures::stream::iter(pieces), 16 << 20)
            .collect()
            .await;
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].as_ref().map(String::len), Ok(8 << 20));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn names_come_with_their_events() {
        let mut decoder = Decoder::new(1 << 10);
        let events =
            decoder.feed(b"event: start\ndata: {}\n\ndata: plain\n\nevent: end\ndata: x\n\n");
        let events: Vec<Event> = events.into_iter().map(Result::unwrap).collect();
        let name = |i: usize| events[i].name.as_deref();
        assert_eq!(
            (name(0), name(1), name(2)),
            (Some("start"), None, Some("end"))
        );
        assert_eq!(events[2].data, "x");
    }

    mod properties {
        use futures::StreamExt;
        use proptest::prelude::*;

        use super::super::event_data;

        fn decode_in(bytes: &[u8], size: usize) -> Vec<Result<String, String>> {
            let pieces: Vec<Result<Vec<u8>, String>> =
                bytes.chunks(size.max(1)).map(|c| Ok(c.to_vec())).collect();
            futures::executor::block_on(
                event_data(futures::stream::iter(pieces), 1 << 20).collect(),
            )
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

//! A model's streamed answer, read by an agent (D28): the model's action maps each event of
//! its provider's stream to canonical deltas, in YAML; here they become the assistant
//! message. `{"type": "text_delta", "text"}` adds to the message's text, and so does a text
//! (the short form: a mapping built for each token costs more than the token's own way through);
//! `{"type": "tool_call_delta", "index", "id"?, "name"?, "arguments"}` to the call at `index`
//! (its arguments' text joined, read as JSON once the answer has ended). A chunk is one delta,
//! a list of them, or null (nothing).

use std::task::Poll;

use futures::channel::oneshot;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::component::ChunkStream;
use crate::error::RunError;

/// How a streamed answer ended: its deltas (or what stopped them), and the texts' state.
pub(super) type Answered = (Result<Deltas, RunError>, Texts);

/// A model's streamed answer as the run's answer reads it: each text as it comes (see
/// [`Texts`]), the deltas kept meanwhile. The run's reader polls the model's stream itself, as
/// it does a component's stream: no token is handed over from the agent's loop. `answered`
/// gets the deltas and the texts' state once the stream has ended (nothing, when the stream
/// was dropped unread); an error ends the stream and goes there, for the agent to fail with.
pub(super) fn streamed(
    mut chunks: ChunkStream,
    mut texts: Texts,
) -> (ChunkStream, oneshot::Receiver<Answered>) {
    let (done, answered) = oneshot::channel();
    let mut reading = Some((Deltas::default(), done));
    let mut added = Vec::new();
    let stream = futures::stream::poll_fn(move |cx| loop {
        if !added.is_empty() {
            let text = added.remove(0);
            return Poll::Ready(Some(Ok(texts.next(text))));
        }
        let Some((deltas, _)) = reading.as_mut() else {
            return Poll::Ready(None);
        };
        let ended = match chunks.poll_next_unpin(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => match deltas.add(chunk, &mut added) {
                Ok(()) => continue,
                Err(err) => Err(err),
            },
            Poll::Ready(Some(Err(err))) => Err(err),
            Poll::Ready(None) => Ok(()),
        };
        if let Some((deltas, done)) = reading.take() {
            added.clear();
            let _ = done.send((ended.map(|()| deltas), std::mem::take(&mut texts)));
        }
    });
    (Box::pin(stream), answered)
}

/// The text an agent streams, message after message: a blank line between two messages' texts.
#[derive(Default)]
pub(super) struct Texts {
    /// Whether text went out, and whether this message's has started.
    sent: bool,
    this_message: bool,
}

impl Texts {
    /// `text` as it goes out: after a blank line when it starts a message's text that follows
    /// another's.
    pub fn next(&mut self, text: String) -> Value {
        let text = match self.sent && !self.this_message {
            true => format!("\n\n{text}"),
            false => text,
        };
        self.sent = true;
        self.this_message = true;
        Value::String(text)
    }

    /// A message ended.
    pub fn ended(&mut self) {
        self.this_message = false;
    }
}

/// The deltas of one answer so far.
#[derive(Default)]
pub(super) struct Deltas {
    text: String,
    /// By index: id, name, the arguments' text.
    calls: Vec<(u64, Option<String>, Option<String>, String)>,
}

impl Deltas {
    /// Adds a chunk's deltas; puts the text each text delta added in `texts`.
    pub fn add(&mut self, chunk: Value, texts: &mut Vec<String>) -> Result<(), RunError> {
        match chunk {
            Value::Null => Ok(()),
            Value::Array(deltas) => deltas
                .into_iter()
                .try_for_each(|delta| self.add_one(delta, texts)),
            delta => self.add_one(delta, texts),
        }
    }

    /// Adds one delta (a token's, most often: its text is moved, not copied, into `texts`).
    fn add_one(&mut self, delta: Value, texts: &mut Vec<String>) -> Result<(), RunError> {
        let text =
            |delta: &Value, key: &str| delta.get(key).and_then(Value::as_str).map(str::to_string);
        let mut delta = match delta {
            Value::Null => return Ok(()),
            // A text is a text delta (its short form: no mapping to build for each token).
            Value::String(added) => {
                self.add_text(added, texts);
                return Ok(());
            }
            delta => delta,
        };
        let kind = field(&mut delta, "type").and_then(|kind| match kind.as_str() {
            Some("text_delta") => Some(Kind::Text),
            Some("tool_call_delta") => Some(Kind::ToolCall),
            _ => None,
        });
        match kind {
            Some(Kind::Text) => {
                if let Some(Value::String(added)) = field(&mut delta, "text").map(Value::take) {
                    self.add_text(added, texts);
                }
            }
            Some(Kind::ToolCall) => {
                let index = delta.get("index").and_then(Value::as_u64).unwrap_or(0);
                let at = match self.calls.iter().position(|call| call.0 == index) {
                    Some(at) => at,
                    None => {
                        self.calls.push((index, None, None, String::new()));
                        self.calls.len() - 1
                    }
                };
                let call = &mut self.calls[at];
                if let Some(id) = text(&delta, "id") {
                    call.1 = Some(id);
                }
                if let Some(name) = text(&delta, "name") {
                    call.2 = Some(name);
                }
                match delta.get("arguments") {
                    Some(Value::String(piece)) => call.3.push_str(piece),
                    None | Some(Value::Null) => {}
                    Some(whole) => call.3.push_str(&whole.to_string()),
                }
            }
            None => {
                return Err(RunError::Flow(format!(
                    "an agent reads its model's streamed answer as canonical deltas \
                     (text_delta, tool_call_delta), got {delta}: check the model action's \
                     output mapping"
                )))
            }
        }
        Ok(())
    }

    /// Adds a text delta's text (none: an empty one).
    fn add_text(&mut self, added: String, texts: &mut Vec<String>) {
        if !added.is_empty() {
            self.text.push_str(&added);
            texts.push(added);
        }
    }

    /// The assistant message the deltas make: its text, then its calls in index order
    /// (arguments that are not JSON are given as the text they are).
    pub fn message(mut self) -> Value {
        let mut content = Vec::new();
        if !self.text.is_empty() {
            content.push(json!({"type": "text", "text": self.text}));
        }
        self.calls.sort_by_key(|call| call.0);
        for (_, id, name, arguments) in self.calls {
            let arguments = match arguments.trim() {
                "" => json!({}),
                text => serde_json::from_str(text).unwrap_or(Value::String(arguments)),
            };
            content.push(json!({"type": "tool_call", "id": id.unwrap_or_default(),
                                "name": name.unwrap_or_default(), "arguments": arguments}));
        }
        json!({"role": "assistant", "content": content})
    }
}

/// The two kinds of delta.
enum Kind {
    Text,
    ToolCall,
}

/// Field `key` of a delta, found by reading its few keys rather than hashing `key`.
fn field<'d>(delta: &'d mut Value, key: &str) -> Option<&'d mut Value> {
    let Value::Object(fields) = delta else {
        return None;
    };
    fields
        .iter_mut()
        .find(|(name, _)| *name == key)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_make_the_message_text_first_then_calls_by_index() {
        let mut deltas = Deltas::default();
        let chunks = [
            json!([{"type": "text_delta", "text": "Let "}]),
            json!("me "),
            json!({"type": "tool_call_delta", "index": 1, "id": "b", "name": "two", "arguments": ""}),
            json!({"type": "text_delta", "text": "check."}),
            json!([{"type": "tool_call_delta", "index": 0, "id": "a", "name": "one", "arguments": "{\"x\""},
                   {"type": "tool_call_delta", "index": 1, "arguments": "not json"}]),
            json!({"type": "tool_call_delta", "index": 0, "arguments": ": 1}"}),
            Value::Null,
        ];
        let mut texts = Vec::new();
        for chunk in chunks {
            deltas.add(chunk, &mut texts).unwrap();
        }
        assert_eq!(texts, ["Let ", "me ", "check."]);
        assert_eq!(
            deltas.message(),
            json!({"role": "assistant", "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_call", "id": "a", "name": "one", "arguments": {"x": 1}},
                {"type": "tool_call", "id": "b", "name": "two", "arguments": "not json"}]})
        );
    }

    fn chunks(items: Vec<Result<Value, RunError>>) -> ChunkStream {
        Box::pin(futures::stream::iter(items))
    }

    #[tokio::test]
    async fn a_streamed_answer_gives_its_texts_then_its_deltas() {
        let mut texts = Texts::default();
        texts.next("Earlier.".into());
        texts.ended();
        let (stream, answered) = streamed(
            chunks(vec![
                Ok(json!(["Hel", "lo"])),
                Ok(
                    json!({"type": "tool_call_delta", "index": 0, "name": "clock", "arguments": "{}"}),
                ),
                Ok(json!("!")),
            ]),
            texts,
        );
        let said: Vec<Value> = stream.map(Result::unwrap).collect().await;
        // The first text of this message follows the earlier message's after a blank line.
        assert_eq!(said, [json!("\n\nHel"), json!("lo"), json!("!")]);
        let (deltas, mut texts) = answered.await.unwrap();
        assert_eq!(
            deltas.unwrap().message(),
            json!({"role": "assistant", "content": [{"type": "text", "text": "Hello!"},
                {"type": "tool_call", "id": "", "name": "clock", "arguments": {}}]})
        );
        // The texts' state comes back: the next message's text starts after a blank line too.
        texts.ended();
        assert_eq!(texts.next("Next".into()), json!("\n\nNext"));
    }

    #[tokio::test]
    async fn a_streamed_answer_ends_at_its_error_and_hands_it_over() {
        let failed = RunError::Flow("upstream went away".into());
        let (stream, answered) = streamed(
            chunks(vec![Ok(json!("Hi")), Err(failed), Ok(json!("never"))]),
            Texts::default(),
        );
        let said: Vec<_> = stream.collect().await;
        assert_eq!(
            said.len(),
            1,
            "the text before the error, and no error item"
        );
        let (deltas, _) = answered.await.unwrap();
        assert!(deltas.is_err_and(|err| err.to_string().contains("upstream went away")));

        let (stream, answered) = streamed(chunks(vec![Ok(json!("Hi"))]), Texts::default());
        drop(stream);
        assert!(
            answered.await.is_err(),
            "a stream dropped unread answers nothing"
        );
    }

    #[test]
    fn a_chunk_that_is_no_delta_is_refused_with_what_it_was() {
        let err = Deltas::default()
            .add(json!({"content": "hi"}), &mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("canonical deltas"), "{err}");
    }
}

//! What happened to the jobs of a run, as the WebSocket's `job_event`, the history and the
//! run view show it: each job's start (with its input), its end (with its output, or its
//! error), where a router sent the run, and the iterations of the jobs inside others.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One thing that happened to a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    pub job_id: String,
    /// The job's `type` (`component`, `if`, …).
    pub job_type: Cow<'static, str>,
    pub event: JobStage,
    /// Where a router sent the run (`routed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_job_id: Option<String>,
    /// Seconds since the run started.
    pub elapsed: f64,
    /// For a job inside a `for-each`, `loop`, `pipeline` or `accumulate`: which item, round
    /// or step (from 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iteration: Option<u32>,
    /// Its input (`started`), its output (`completed`; none when it streamed) or its error's
    /// message (`failed`), within what a run keeps (see [`Kept`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStage {
    Started,
    Completed,
    Failed,
    /// A router sent the run to another job.
    Routed,
    /// An agent added a message to its conversation (the model's, or a tool's result): its
    /// steps, as they happen.
    Message,
}

impl JobStage {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStage::Started => "started",
            JobStage::Completed => "completed",
            JobStage::Failed => "failed",
            JobStage::Routed => "routed",
            JobStage::Message => "message",
        }
    }
}

/// The most of one value a run keeps for its view, as JSON.
pub const VALUE_ROOM: usize = 64 * 1024;
/// The most of all its jobs' values a run keeps.
pub const RUN_ROOM: usize = 1024 * 1024;

/// What is left of a run's room for its jobs' values: a value that does not fit is kept as a
/// note saying so, so that a run of thousands of jobs or of large values costs a bounded
/// amount of memory and history.
#[derive(Debug)]
pub struct Kept {
    left: usize,
}

impl Default for Kept {
    fn default() -> Self {
        Self { left: RUN_ROOM }
    }
}

impl Kept {
    /// `value` as it is when it fits, else a note of why it is not kept; `size`, its size as
    /// JSON when it is known already.
    pub fn keep(&mut self, value: &Value, size: Option<usize>) -> Value {
        let room = VALUE_ROOM.min(self.left);
        let size = match size {
            Some(size) => Some(size).filter(|size| *size <= room),
            None => size_within(value, room),
        };
        match size {
            Some(bytes) => {
                self.left -= bytes;
                value.clone()
            }
            None if room < VALUE_ROOM => {
                Value::String("(not kept: this run's values reached 1 MiB)".into())
            }
            None => too_large(),
        }
    }
}

/// The note kept instead of a value past [`VALUE_ROOM`].
pub fn too_large() -> Value {
    Value::String("(not kept: larger than 64 KiB)".into())
}

/// The size of `value` as JSON (serde_json's compact writing) when it is at most `room` bytes.
/// Counted, not written: a run measures each job value it tells and keeps, an agent's whole
/// message or a chat's whole conversation among them.
pub fn size_within(value: &Value, room: usize) -> Option<usize> {
    let mut left = room;
    take_size(value, &mut left).then(|| room - left)
}

/// Takes `value`'s size as JSON out of `left`; false as soon as it does not fit.
fn take_size(value: &Value, left: &mut usize) -> bool {
    match value {
        Value::Null | Value::Bool(true) => take(left, 4),
        Value::Bool(false) => take(left, 5),
        Value::Number(number) => take(left, number_size(number)),
        Value::String(text) => take(left, string_size(text)),
        // Brackets and the commas between items.
        Value::Array(items) => {
            take(left, 2 + items.len().saturating_sub(1))
                && items.iter().all(|item| take_size(item, left))
        }
        // Braces, and a colon and a comma (but the last) per entry.
        Value::Object(map) => {
            take(left, 2 + map.len() + map.len().saturating_sub(1))
                && map
                    .iter()
                    .all(|(key, item)| take(left, string_size(key)) && take_size(item, left))
        }
    }
}

fn take(left: &mut usize, size: usize) -> bool {
    match left.checked_sub(size) {
        Some(rest) => {
            *left = rest;
            true
        }
        None => false,
    }
}

/// A text's size as serde_json writes it: quoted; `"`, `\\` and control characters escaped
/// (`\n` and the like in two bytes, the others as `\u00XX`).
fn string_size(text: &str) -> usize {
    // Most texts have nothing to escape: a count the compiler makes wide says so (a byte's
    // count per chunk, which it vectorizes: ~1 instruction a byte, where a filtered count
    // takes 8).
    let escaped = text.as_bytes().chunks(128).any(|chunk| {
        let count = chunk.iter().fold(0u8, |count, &byte| {
            count + u8::from((byte < 0x20) | (byte == b'"') | (byte == b'\\'))
        });
        count > 0
    });
    let extra = match escaped {
        false => 0,
        true => text
            .bytes()
            .map(|byte| match byte {
                b'"' | b'\\' | 0x08 | 0x09 | 0x0a | 0x0c | 0x0d => 1,
                0..=0x1f => 5,
                _ => 0,
            })
            .sum(),
    };
    2 + text.len() + extra
}

/// A number's size as serde_json writes it (written, to a counter: numbers are short).
fn number_size(number: &serde_json::Number) -> usize {
    let mut counted = Counted(0);
    let _ = serde_json::to_writer(&mut counted, number);
    counted.0
}

/// Counts the bytes written.
struct Counted(usize);

impl std::io::Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
            "[\"\\\\\n\u{1}\u{7f}é a]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((any::<String>(), inner), 0..5)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn a_size_is_what_serde_json_writes(value in json_value(), room in 0usize..64) {
            let written = serde_json::to_vec(&value).unwrap().len();
            prop_assert_eq!(size_within(&value, usize::MAX), Some(written));
            prop_assert_eq!(size_within(&value, room), (written <= room).then_some(written));
        }
    }

    #[test]
    fn values_are_kept_within_their_room_and_the_runs() {
        let mut kept = Kept::default();
        assert_eq!(kept.keep(&json!({"a": [1, 2]}), None), json!({"a": [1, 2]}));
        let large = Value::String("x".repeat(VALUE_ROOM));
        assert_eq!(
            kept.keep(&large, None),
            json!("(not kept: larger than 64 KiB)")
        );
        assert_eq!(
            kept.keep(&large, Some(VALUE_ROOM + 2)),
            json!("(not kept: larger than 64 KiB)")
        );
        // A size measured already counts as the one measured here.
        let medium = Value::String("y".repeat(VALUE_ROOM - 10));
        let measured = size_within(&medium, VALUE_ROOM);
        for told in 0..16 {
            let size = measured.filter(|_| told % 2 == 1);
            assert_eq!(kept.keep(&medium, size), medium);
        }
        assert_eq!(
            kept.keep(&medium, measured),
            json!("(not kept: this run's values reached 1 MiB)")
        );
        assert_eq!(kept.keep(&json!(1), None), json!(1));
    }
}

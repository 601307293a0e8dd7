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

/// The size of `value` as JSON when it is at most `room` bytes (what it costs to tell: at most
/// `room` bytes are written to know).
pub fn size_within(value: &Value, room: usize) -> Option<usize> {
    let mut counted = Counted { bytes: 0, room };
    serde_json::to_writer(&mut counted, value)
        .ok()
        .map(|()| counted.bytes)
}

/// Counts the bytes written, failing past `room`.
struct Counted {
    bytes: usize,
    room: usize,
}

impl std::io::Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes += buf.len();
        if self.bytes > self.room {
            return Err(std::io::Error::other("too large"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

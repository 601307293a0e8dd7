//! Tasks: one run of a workflow, started in the background, observable while it runs.
//!
//! A task keeps what its run produced (the text pieces of a stream, or the final value), so
//! that any number of listeners can replay and follow it; it can be cancelled, which drops the
//! run and with it the upstream request; and it records itself in the run history.

mod drive;
mod gather;
mod pieces;
mod registry;
mod state;

pub use crate::record::{Status, TaskView};
pub use registry::{CancelError, StartError, TaskRegistry};
pub use state::{Follow, ResumeError, Shape, Task};

/// Pieces' room a run (its batch) and a follower (what is new at each wake) keep from one
/// round to the next: enough for tokens arriving a few at a time. A round of hundreds (a
/// stream that fell behind) gives its room back instead of keeping it for the whole stream.
const KEEP_ROOM: usize = 8;

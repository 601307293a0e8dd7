//! How long and how large an upstream's answer may be, and the one timer that keeps a request
//! within its time: the whole request's deadline (`timeout`) and the silence it allows between
//! two pieces (`read_timeout`, D18).

use std::time::Duration;

use tokio::time::Instant;

use crate::error::RunError;

/// How long and how large an action's answer may be.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// The whole request, first byte to last.
    pub total: Option<Duration>,
    /// Silence: waiting for the answer, or between two pieces of it.
    pub silence: Duration,
    pub max_event: usize,
    pub max_body: usize,
}

/// How long one request may keep its caller waiting: one timer for the whole request, moved on
/// at each wait. Moving a timer later takes no lock; a timer made for each piece of a stream
/// would be put into the runtime's timer wheel and taken out again for every token.
pub(super) struct Patience {
    pub limits: Limits,
    /// When the whole request must have ended, if the action says.
    deadline: Option<Instant>,
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl Patience {
    pub fn new(limits: Limits, deadline: Option<Instant>) -> Self {
        let until = Instant::now() + limits.silence;
        Self {
            limits,
            deadline,
            timer: Box::pin(tokio::time::sleep_until(until)),
        }
    }

    /// Waits for `future`, for as long as the silence and the whole request's deadline allow.
    pub async fn wait<T>(
        &mut self,
        future: impl std::future::Future<Output = T>,
    ) -> Result<T, RunError> {
        let quiet = Instant::now() + self.limits.silence;
        let until = self.deadline.map_or(quiet, |deadline| deadline.min(quiet));
        self.timer.as_mut().reset(until);
        tokio::select! {
            biased;
            value = future => Ok(value),
            () = self.timer.as_mut() => Err(match (self.deadline, self.limits.total) {
                (Some(deadline), Some(total)) if deadline <= quiet => RunError::Timeout(total),
                _ => RunError::Silent(self.limits.silence),
            }),
        }
    }
}

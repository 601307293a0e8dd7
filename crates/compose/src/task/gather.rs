//! A run's streamed pieces taken in batches: every piece already there, then the listeners are
//! woken once. Under load this saves a wake-up and a write per token; it never waits for the
//! upstream. What came before a failure is kept.

use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};

use crate::workflow::{Piece, TextStream};
use crate::RunError;

/// Most pieces handed to the listeners at once, and the longest they are gathered for.
const BATCH_PIECES: usize = 256;
const BATCH_TIME: Duration = Duration::from_millis(2);

/// The pieces of a stream, a batch at a time (see [`Gathering::next`]).
pub(super) struct Gathering<'a> {
    pieces: TextStream<'a>,
    /// The last batch, its room kept for the next.
    batch: Vec<Piece>,
    first: bool,
}

/// One batch: its pieces (the gathering's own, lent until the next), and the failure that
/// ended the stream after them, if one did.
pub(super) struct Batch<'a> {
    pub pieces: &'a mut Vec<Piece>,
    pub failure: Option<RunError>,
}

impl<'a> Gathering<'a> {
    pub fn new(pieces: TextStream<'a>) -> Self {
        Self {
            pieces,
            batch: Vec::new(),
            first: true,
        }
    }

    /// The next batch; `None` once the stream has ended. The first piece comes alone, at
    /// once: it is the one a user waits for.
    pub async fn next(&mut self) -> Option<Batch<'_>> {
        // Room for a few pieces is kept; a large batch (a stream that fell behind) does not
        // keep its room for as long as the stream lasts.
        self.batch.clear();
        self.batch.shrink_to(super::KEEP_ROOM);
        let until = Instant::now() + BATCH_TIME;
        let mut next = Some(self.pieces.next().await?);
        let mut failure = None;
        loop {
            while let Some(piece) = next.take() {
                match piece {
                    Ok(piece) => self.batch.push(piece),
                    Err(err) => {
                        failure = Some(err);
                        break;
                    }
                }
                next = self.pieces.next().now_or_never().flatten();
            }
            if std::mem::take(&mut self.first)
                || failure.is_some()
                || self.batch.len() >= BATCH_PIECES
                || Instant::now() >= until
            {
                break;
            }
            // The upstream's connection hands over one HTTP chunk (one token) at a time: let
            // it, and every other ready task, run once, and take what that brought. A token
            // that came alone goes out after one such round.
            yield_to_ready_tasks().await;
            next = self.pieces.next().now_or_never().flatten();
            if next.is_none() {
                break;
            }
        }
        Some(Batch {
            pieces: &mut self.batch,
            failure,
        })
    }
}

/// Returns after every task that is ready to run has run once: this one goes to the back of
/// the scheduler's queue (tokio's `yield_now` would wait for the next poll of the I/O driver).
async fn yield_to_ready_tasks() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if std::mem::replace(&mut yielded, true) {
            std::task::Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

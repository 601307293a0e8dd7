//! A run's output on its way to the caller: a value or bytes once the run has ended, a stream
//! as soon as a terminal job has it. The run's other jobs go on while the stream is read (a
//! terminal `for-each` gives each result as it comes, a job beside the one that streams keeps
//! working), and the stream ends only once they have: a job that fails then ends it with its
//! error.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use futures::channel::oneshot;
use futures::{FutureExt, StreamExt};
use parking_lot::Mutex;

use super::stream::{self, Produced, TextStream};
use super::RunOutput;
use crate::error::RunError;

/// A run to its end: every job done, its output sent through its [`Publish`].
pub(super) type Driver<'a> = Pin<Box<dyn Future<Output = Result<(), RunError>> + Send + 'a>>;

/// Where a run's output goes: sent once, by the first terminal stream or by the run's end.
pub(super) struct Publish(Mutex<Option<oneshot::Sender<Option<Produced>>>>);

/// The other end of a [`Publish`].
pub(super) type Published = oneshot::Receiver<Option<Produced>>;

impl Publish {
    pub fn new() -> (Self, Published) {
        let (sender, receiver) = oneshot::channel();
        (Self(Mutex::new(Some(sender))), receiver)
    }

    /// Sends the run's output, unless it was sent already (or nobody waits for it): then
    /// gives it back.
    pub fn send(&self, output: Option<Produced>) -> Result<(), Option<Produced>> {
        match self.0.lock().take() {
            Some(sender) => sender.send(output),
            None => Err(output),
        }
    }

    /// Whether the output is still to be sent.
    pub fn open(&self) -> bool {
        self.0.lock().is_some()
    }
}

/// The run's output, once `driver` has ended or published a stream: then the stream is read
/// alongside the rest of the run (see [`alongside`]).
pub(super) async fn output(
    mut driver: Driver<'_>,
    mut published: Published,
) -> Result<RunOutput<'_>, RunError> {
    let early = std::future::poll_fn(|cx| {
        if let Poll::Ready(ended) = driver.as_mut().poll(cx) {
            return Poll::Ready(ended.map(|()| None));
        }
        match published.poll_unpin(cx) {
            Poll::Ready(Ok(output)) => Poll::Ready(Ok(Some(output))),
            // Sent only by the driver: it said so when it ended.
            _ => Poll::Pending,
        }
    })
    .await?;
    let output = match early {
        // The run ended: its output is there (nothing when it sent none).
        None => published.try_recv().ok().flatten().flatten(),
        Some(Some(Produced::Stream { chunks, encoding })) => {
            let pieces = stream::encode(chunks, encoding);
            return Ok(RunOutput::Stream(alongside(pieces, driver)));
        }
        Some(other) => {
            driver.await?;
            other
        }
    };
    Ok(match output {
        Some(Produced::Stream { chunks, encoding }) => {
            RunOutput::Stream(stream::encode(chunks, encoding))
        }
        Some(Produced::Bytes(binary)) => RunOutput::Bytes(binary),
        Some(Produced::Value(value)) => RunOutput::Value(value),
        None => RunOutput::Value(serde_json::Value::Null),
    })
}

/// `pieces`, read while `driver` goes on: they end once both have, with the driver's error if
/// it failed (after the pieces it had sent).
fn alongside<'a>(mut pieces: TextStream<'static>, driver: Driver<'a>) -> TextStream<'a> {
    let mut driver = Some(driver);
    let mut ended = false;
    Box::pin(futures::stream::poll_fn(move |cx| {
        if !ended {
            match pieces.poll_next_unpin(cx) {
                Poll::Ready(Some(piece)) => return Poll::Ready(Some(piece)),
                Poll::Ready(None) => ended = true,
                Poll::Pending => {}
            }
        }
        let Some(running) = driver.as_mut() else {
            return if ended {
                Poll::Ready(None)
            } else {
                Poll::Pending
            };
        };
        match running.as_mut().poll(cx) {
            Poll::Ready(Ok(())) => {
                driver = None;
                if ended {
                    Poll::Ready(None)
                } else {
                    Poll::Pending
                }
            }
            Poll::Ready(Err(err)) => {
                driver = None;
                ended = true;
                Poll::Ready(Some(Err(err)))
            }
            Poll::Pending => Poll::Pending,
        }
    }))
}

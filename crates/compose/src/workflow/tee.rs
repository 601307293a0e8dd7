//! A `fan-out`'s branches handed on as streams (spec §13.12): one stream read by several
//! jobs, each getting every chunk in order as it comes. No task pumps it: the branch that
//! needs a chunk nobody has read yet reads the source, and leaves a copy for each other branch.
//! A branch at most `room` chunks ahead of the slowest other waits for it (the slowest reader
//! sets the pace, as in the original); a branch dropped is no longer waited for.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures::{Stream, StreamExt};
use parking_lot::Mutex;
use serde_json::Value;

use super::stream::Produced;
use crate::component::ChunkStream;
use crate::error::RunError;

type Chunk = Result<Value, RunError>;

/// A fan-out's output as one stream per branch, in `names`' order: a stream split, or the
/// lists of a mapping (a fan-out of a value).
pub(super) fn branches(
    produced: Produced,
    names: &[String],
    room: usize,
) -> Result<Vec<ChunkStream>, RunError> {
    match produced {
        Produced::Stream { chunks, .. } => Ok(split(chunks, names.len(), room)),
        Produced::Value(Value::Object(mut lists)) => Ok(names
            .iter()
            .map(|name| {
                let items = match lists.remove(name) {
                    Some(Value::Array(items)) => items,
                    Some(single) => vec![single],
                    None => Vec::new(),
                };
                Box::pin(futures::stream::iter(items.into_iter().map(Ok))) as ChunkStream
            })
            .collect()),
        _ => Err(RunError::Flow(
            "a fan-out's input is bytes: it splits lists and streams".into(),
        )),
    }
}

/// `source` read by `count` branches.
fn split(source: ChunkStream, count: usize, room: usize) -> Vec<ChunkStream> {
    let shared = Arc::new(Mutex::new(Shared {
        source,
        ended: false,
        room,
        queues: (0..count).map(|_| Some(VecDeque::new())).collect(),
        wakers: vec![None; count],
    }));
    (0..count)
        .map(|index| {
            Box::pin(Branch {
                shared: Arc::clone(&shared),
                index,
            }) as ChunkStream
        })
        .collect()
}

/// What the branches share: the source, and for each branch still read, the chunks it has not
/// read yet and who waits on it.
struct Shared {
    source: ChunkStream,
    ended: bool,
    room: usize,
    queues: Vec<Option<VecDeque<Chunk>>>,
    wakers: Vec<Option<Waker>>,
}

impl Shared {
    /// Wakes every branch that waits (for a chunk, or for room), but `except`.
    fn wake_others(&mut self, except: usize) {
        for (index, waker) in self.wakers.iter_mut().enumerate() {
            if index != except {
                if let Some(waker) = waker.take() {
                    waker.wake();
                }
            }
        }
    }
}

/// One branch of a split stream.
struct Branch {
    shared: Arc<Mutex<Shared>>,
    index: usize,
}

impl Stream for Branch {
    type Item = Chunk;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        let index = self.index;
        let mut shared = self.shared.lock();
        let shared = &mut *shared;
        if let Some(chunk) = shared.queues[index].as_mut().and_then(VecDeque::pop_front) {
            // A branch that waited for room may go on.
            shared.wake_others(index);
            return Poll::Ready(Some(chunk));
        }
        if shared.ended {
            return Poll::Ready(None);
        }
        let full = shared
            .queues
            .iter()
            .flatten()
            .any(|queue| queue.len() >= shared.room);
        if full {
            shared.wakers[index] = Some(cx.waker().clone());
            return Poll::Pending;
        }
        match shared.source.poll_next_unpin(cx) {
            Poll::Ready(Some(chunk)) => {
                for (other, queue) in shared.queues.iter_mut().enumerate() {
                    if let Some(queue) = queue.as_mut().filter(|_| other != index) {
                        queue.push_back(chunk.clone());
                    }
                }
                shared.wake_others(index);
                Poll::Ready(Some(chunk))
            }
            Poll::Ready(None) => {
                shared.ended = true;
                shared.wake_others(index);
                Poll::Ready(None)
            }
            Poll::Pending => {
                // The source wakes this branch only; the others are woken by what it reads.
                shared.wakers[index] = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for Branch {
    fn drop(&mut self) {
        let mut shared = self.shared.lock();
        shared.queues[self.index] = None;
        shared.wakers[self.index] = None;
        // One of them may have waited for this one's room, or on the source for it.
        shared.wake_others(self.index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn numbers(count: u64) -> ChunkStream {
        Box::pin(futures::stream::iter(
            (0..count).map(|n| Ok(Value::from(n))),
        ))
    }

    #[tokio::test]
    async fn every_branch_gets_every_chunk_in_order() {
        let branches = split(numbers(5), 3, 2);
        let read = futures::future::join_all(branches.into_iter().map(|b| b.collect::<Vec<_>>()));
        for chunks in read.await {
            let chunks: Vec<Value> = chunks.into_iter().map(Result::unwrap).collect();
            assert_eq!(chunks, (0..5).map(Value::from).collect::<Vec<_>>());
        }
    }

    #[tokio::test]
    async fn a_branch_waits_once_it_is_room_ahead_of_another() {
        let mut branches = split(numbers(10), 2, 2);
        let mut slow = branches.pop().unwrap();
        let mut fast = branches.pop().unwrap();
        for n in 0..2_u64 {
            assert_eq!(fast.next().await.unwrap().unwrap(), Value::from(n));
        }
        assert!(fast.next().now_or_never().is_none(), "two ahead: it waits");
        assert_eq!(slow.next().await.unwrap().unwrap(), Value::from(0));
        assert_eq!(fast.next().await.unwrap().unwrap(), Value::from(2));
        // Once the slow one is gone, nothing holds the other back.
        drop(slow);
        let rest: Vec<_> = fast.map(Result::unwrap).collect().await;
        assert_eq!(rest, (3..10).map(Value::from).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_value_gives_each_branch_its_list() {
        let names = ["a".to_string(), "b".to_string()];
        let value = serde_json::json!({"a": [1, 2], "b": [1, 2]});
        let branches = branches(Produced::Value(value), &names, 4).unwrap();
        for branch in branches {
            let items: Vec<_> = branch.map(Result::unwrap).collect().await;
            assert_eq!(items, [Value::from(1), Value::from(2)]);
        }
    }
}

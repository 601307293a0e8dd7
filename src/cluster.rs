//! Replicas sharing one PostgreSQL database (D22): any replica answers for any run.
//!
//! A run lives in the memory of the replica that runs it (its owner), as on a single server.
//! The database carries what the others need, and `LISTEN/NOTIFY` wakes them:
//! - every replica says it is alive every [`HEARTBEAT`]; one silent for
//!   [`REPLICA_LOST_AFTER`](crate::store::REPLICA_LOST_AFTER) has its unfinished runs failed
//!   ("replica lost") by the others;
//! - to follow a run of another replica, a replica asks for it (`mc_follow`); the owner then
//!   writes the run's pieces to `task_pieces`, a batch at most every [`BATCH`], and ends them
//!   with a row without a piece that says how the run ended; each write notifies `mc_task`,
//!   which wakes the followers. Nothing is written for runs nobody follows elsewhere;
//! - a cancel for a run of another replica is passed on (`mc_cancel`) to its owner.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use parking_lot::Mutex;
use serde_json::Value;
use sqlx::postgres::PgListener;
use sqlx::{PgPool, Row};
use tokio::sync::Notify;

use crate::store::{now_ms, Failure, FailureKind, PgStore, RunRecord, RunStore};
use compose::task::{Follow, Status, Task, TaskRegistry, TaskView};
use compose::AgentStep;

/// How often a replica says it is alive, and looks for replicas that stopped.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long the owner gathers pieces before writing them for the followers.
const BATCH: Duration = Duration::from_millis(20);
/// How often a follower looks again when no notification came (one may be lost when the
/// listening connection is re-established).
const POLL: Duration = Duration::from_millis(500);
/// What a replica whose runs are failed says.
pub const REPLICA_LOST: &str = "replica lost: the server running this run stopped";

/// This replica's part in the cluster.
pub struct Cluster {
    pool: PgPool,
    store: Arc<PgStore>,
    tasks: Arc<TaskRegistry>,
    /// Followers here of runs elsewhere (how many per run), woken when their run has news.
    waiting: Mutex<HashMap<String, (Arc<Notify>, usize)>>,
    /// Runs of this replica whose pieces are being written for others.
    publishing: Mutex<HashSet<String>>,
}

impl Cluster {
    /// Says this replica is alive, and starts listening, heart-beating and sweeping.
    pub async fn join(store: Arc<PgStore>, tasks: Arc<TaskRegistry>) -> Result<Arc<Self>, String> {
        let cluster = Arc::new(Self {
            pool: store.pool().clone(),
            store,
            tasks,
            waiting: Mutex::new(HashMap::new()),
            publishing: Mutex::new(HashSet::new()),
        });
        cluster.beat().await.map_err(|err| err.to_string())?;
        let mut listener = PgListener::connect_with(&cluster.pool)
            .await
            .map_err(|err| format!("cannot listen for other replicas: {err}"))?;
        listener
            .listen_all(["mc_task", "mc_follow", "mc_cancel"])
            .await
            .map_err(|err| format!("cannot listen for other replicas: {err}"))?;
        tokio::spawn(Arc::clone(&cluster).listen(listener));
        tokio::spawn(Arc::clone(&cluster).keep_alive());
        Ok(cluster)
    }

    async fn beat(&self) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO replicas (id, heartbeat_at) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at",
        )
        .bind(self.store.replica())
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map(drop)
    }

    /// Every [`HEARTBEAT`]: says this replica is alive, and fails the runs of replicas that
    /// stopped saying so.
    async fn keep_alive(self: Arc<Self>) {
        let mut every = tokio::time::interval(HEARTBEAT);
        loop {
            every.tick().await;
            if let Err(err) = self.beat().await {
                tracing::warn!("cannot tell the other replicas this one is alive: {err}");
            }
            let lost = Failure::new(FailureKind::Interrupted, REPLICA_LOST);
            match self.store.fail_unfinished(&lost).await {
                Ok(0) => {}
                Ok(lost) => tracing::warn!("{lost} run(s) of a replica that stopped marked failed"),
                Err(err) => tracing::warn!("cannot look for stopped replicas: {err}"),
            }
        }
    }

    async fn listen(self: Arc<Self>, mut listener: PgListener) {
        loop {
            // `recv` reconnects by itself after a lost connection.
            let notification = match listener.recv().await {
                Ok(notification) => notification,
                Err(err) => {
                    tracing::warn!("listening for other replicas: {err}");
                    tokio::time::sleep(HEARTBEAT).await;
                    continue;
                }
            };
            let task = notification.payload();
            match notification.channel() {
                "mc_task" => {
                    if let Some((waiting, _)) = self.waiting.lock().get(task) {
                        waiting.notify_waiters();
                    }
                }
                "mc_follow" => {
                    if let Some(task) = self.tasks.get(task) {
                        Arc::clone(&self).publish(task);
                    }
                }
                "mc_cancel" => {
                    let _ = self.tasks.request_cancel(task, "cancelled by request");
                }
                _ => {}
            }
        }
    }

    /// Writes the pieces of a run of this replica for the others, once (see the module).
    fn publish(self: Arc<Self>, task: Arc<Task>) {
        if !self.publishing.lock().insert(task.id.clone()) {
            return;
        }
        tokio::spawn(async move {
            let mut follow = std::pin::pin!(task.follow(0));
            let mut seq = 0_i64;
            let mut next = follow.next().await;
            while let Some(first) = next.take() {
                let mut batch = vec![first];
                let until = tokio::time::Instant::now() + BATCH;
                while !matches!(batch.last(), Some(Follow::End(..))) {
                    match tokio::time::timeout_at(until, follow.next()).await {
                        Ok(Some(item)) => batch.push(item),
                        Ok(None) | Err(_) => break,
                    }
                }
                let ended = matches!(batch.last(), Some(Follow::End(..)));
                if let Err(err) = self.write(&task.id, &mut seq, batch).await {
                    tracing::warn!(task = %task.id, "cannot write pieces for other replicas: {err}");
                    break;
                }
                if ended {
                    break;
                }
                next = follow.next().await;
            }
            self.publishing.lock().remove(&task.id);
        });
    }

    /// One batch of a run's pieces (and its end), in one transaction with its notification.
    async fn write(
        &self,
        task: &str,
        seq: &mut i64,
        batch: Vec<Follow>,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for item in batch {
            let (piece, step, status, error) = match item {
                Follow::Piece(piece) => (Some(piece), None, None, None),
                Follow::Step(step, piece) => (Some(piece), Some(step.name()), None, None),
                // The failure whole, as JSON: the follower reports it as the owner does.
                Follow::End(status, error) => (
                    None,
                    None,
                    Some(status.as_str()),
                    error.and_then(|failure| serde_json::to_string(&failure).ok()),
                ),
                // Bytes, job events and interrupts are not followed across replicas.
                Follow::Bytes(_) | Follow::Job(_) | Follow::Interrupt(_) => continue,
            };
            sqlx::query(
                "INSERT INTO task_pieces (task_id, seq, piece, step, status, error) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(task)
            .bind(*seq)
            .bind(piece)
            .bind(step)
            .bind(status)
            .bind(error)
            .execute(&mut *tx)
            .await?;
            *seq += 1;
        }
        sqlx::query("SELECT pg_notify('mc_task', $1)")
            .bind(task)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// A run of another replica as the history has it: what its owner recorded, typed as it
    /// recorded it, so that this replica answers for it as the owner does.
    pub async fn record(&self, id: &str) -> Option<RunRecord> {
        self.store.get(id).await.ok()?
    }

    /// A run of another replica as `GET /tasks/{id}` shows it.
    pub async fn view(&self, id: &str) -> Option<TaskView> {
        Some(self.record(id).await?.into_view())
    }

    /// Passes a cancel on to the run's owner and waits (up to 10 s) until the run has ended.
    pub async fn cancel(&self, id: &str) -> Option<TaskView> {
        let view = self.view(id).await?;
        if view.status.is_terminal() {
            return Some(view);
        }
        let _ = sqlx::query("SELECT pg_notify('mc_cancel', $1)")
            .bind(id)
            .execute(&self.pool)
            .await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let view = self.view(id).await?;
            if view.status.is_terminal() || tokio::time::Instant::now() > deadline {
                return Some(view);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The pieces of a run of another replica: asks its owner for them, replays what is
    /// there, then follows, until the run's end (or its owner's loss).
    pub fn follow(self: &Arc<Self>, id: String) -> impl Stream<Item = Follow> + Send + 'static {
        let cluster = Arc::clone(self);
        async_stream::stream! {
            let waiter = Waiter::new(&cluster, &id);
            let woken = Arc::clone(&waiter.notify);
            let _ = sqlx::query("SELECT pg_notify('mc_follow', $1)")
                .bind(&id)
                .execute(&cluster.pool)
                .await;
            let mut next = 0_i64;
            let mut sent = 0_usize;
            // When the history says the run ended before its end row came: how long to wait.
            let mut ended_seen: Option<tokio::time::Instant> = None;
            loop {
                let notified = woken.notified();
                let mut notified = std::pin::pin!(notified);
                notified.as_mut().enable();
                let rows = sqlx::query(
                    "SELECT seq, piece, step, status, error FROM task_pieces \
                     WHERE task_id = $1 AND seq >= $2 ORDER BY seq",
                )
                .bind(&id)
                .bind(next)
                .fetch_all(&cluster.pool)
                .await
                .unwrap_or_default();
                for row in rows {
                    next += 1;
                    let piece: Option<String> = row.try_get("piece").unwrap_or_default();
                    let step: Option<String> = row.try_get("step").unwrap_or_default();
                    match (piece, step.as_deref().and_then(AgentStep::named)) {
                        (Some(piece), None) => {
                            sent += piece.len();
                            yield Follow::Piece(piece);
                        }
                        (Some(piece), Some(step)) => {
                            if step == AgentStep::Text {
                                sent += piece.len();
                            }
                            yield Follow::Step(step, piece);
                        }
                        (None, _) => {
                            let status: Option<String> = row.try_get("status").unwrap_or_default();
                            let error: Option<String> = row.try_get("error").unwrap_or_default();
                            let error = error.map(|json| {
                                serde_json::from_str(&json).unwrap_or_else(|_| Failure::unknown(json))
                            });
                            let status = status.as_deref().and_then(Status::named).unwrap_or(Status::Failed);
                            yield Follow::End(status, error);
                            return;
                        }
                    }
                }
                // No end row: the owner may be gone, or the run over before anyone asked.
                if let Some(view) = cluster.view(&id).await.filter(|v| v.status.is_terminal()) {
                    let lost = view
                        .error
                        .as_ref()
                        .is_some_and(|failure| failure.kind == FailureKind::Interrupted);
                    let since = *ended_seen.get_or_insert_with(tokio::time::Instant::now);
                    if lost || since.elapsed() > 4 * POLL {
                        if let Some(Value::String(text)) = &view.output {
                            if let Some(rest) = text.get(sent..).filter(|rest| !rest.is_empty()) {
                                yield Follow::Piece(rest.to_string());
                            }
                        }
                        yield Follow::End(view.status, view.error);
                        return;
                    }
                }
                let _ = tokio::time::timeout(POLL, notified).await;
            }
        }
    }
}

/// One follower here of a run elsewhere, registered for its run's notifications while it lives.
struct Waiter {
    cluster: Arc<Cluster>,
    id: String,
    notify: Arc<Notify>,
}

impl Waiter {
    fn new(cluster: &Arc<Cluster>, id: &str) -> Self {
        let mut waiting = cluster.waiting.lock();
        let entry = waiting
            .entry(id.to_string())
            .or_insert_with(|| (Arc::new(Notify::new()), 0));
        entry.1 += 1;
        Self {
            cluster: Arc::clone(cluster),
            id: id.to_string(),
            notify: Arc::clone(&entry.0),
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut waiting = self.cluster.waiting.lock();
        if let Some(entry) = waiting.get_mut(&self.id) {
            entry.1 -= 1;
            if entry.1 == 0 {
                waiting.remove(&self.id);
            }
        }
    }
}

//! The WebSocket route (`<base_path>/ws` unless configured otherwise), as the original's
//! http-server adapter serves it: JSON messages `{"type", "id", "data", "timestamp"}`.
//!
//! A client sends `run_workflow`, `subscribe_task`, `unsubscribe_task`, `get_task` or `ping`;
//! the server answers `workflow_started`, `task_subscribed`, `task_unsubscribed`,
//! `task_state`, `pong`, or `error` (`INVALID_REQUEST`, `WORKFLOW_NOT_FOUND`,
//! `TASK_NOT_FOUND`). A task the client follows sends `task_event` (started, then completed,
//! failed or cancelled), `job_event` for each job and, unlike the original, its streamed
//! output as it arrives: `task_output` with each piece (bytes as base64).
//!
//! The route sits behind the API's access keys; a browser page may open it only from an
//! origin the API allows (a WebSocket is not covered by CORS). The server pings every
//! `ping_interval` and closes a connection whose pong does not come within `ping_timeout`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::error::ApiError;
use super::ApiState;
use crate::server::{guard, RequestId};
use compose::config::{Origins, WebSocket as Settings};
use compose::record::{Failure, FailureKind, Status};
use compose::task::{Follow, ResumeError, Task, TaskRegistry};
use compose::AgentStep;

/// How many messages may wait for a slow client before its connection is closed.
const QUEUE: usize = 1024;

/// The WebSocket settings and who is connected: each session, with the way to hand it a task
/// to follow (a run posted with `subscribe_task` and `?session_id=`).
pub struct Hub {
    settings: Settings,
    origins: Origins,
    sessions: Mutex<HashMap<String, mpsc::UnboundedSender<Arc<Task>>>>,
}

impl Hub {
    pub fn new(settings: Settings, origins: Origins) -> Self {
        Self {
            settings,
            origins,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    pub fn path(&self) -> &str {
        &self.settings.path
    }

    /// Whether a client of this session is connected.
    pub fn is_connected(&self, session: &str) -> bool {
        self.sessions.lock().contains_key(session)
    }

    /// Has the session's client follow `task`; false when it is not connected.
    pub fn subscribe(&self, session: &str, task: Arc<Task>) -> bool {
        self.sessions
            .lock()
            .get(session)
            .is_some_and(|client| client.send(task).is_ok())
    }
}

#[derive(Deserialize)]
pub struct Connect {
    session: Option<String>,
    task: Option<String>,
}

/// Upgrades the request, once its origin (if a browser sent one) is allowed.
pub async fn upgrade(
    State(state): State<ApiState>,
    Query(connect): Query<Connect>,
    headers: HeaderMap,
    request_id: Option<Extension<RequestId>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let request_id = request_id.map(|Extension(id)| id.0);
    let Some(hub) = state.ws.clone() else {
        return ApiError::not_found("Not Found").into_response();
    };
    let origin = headers
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or(""));
    if let Some(origin) = origin.filter(|o| !guard::origin_allowed(&hub.origins, o)) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!("WebSocket from origin {origin:?} refused: add it to the adapter's origins"),
        )
        .into_response();
    }
    upgrade.on_upgrade(move |socket| connection(socket, hub, state.tasks, connect, request_id))
}

/// One message to the client.
fn message(kind: &str, id: Option<&Value>, data: Value) -> Message {
    let mut out = Map::new();
    out.insert("type".into(), Value::from(kind));
    if let Some(id) = id.filter(|id| !id.is_null()) {
        out.insert("id".into(), id.clone());
    }
    out.insert("data".into(), data);
    out.insert(
        "timestamp".into(),
        Value::from(timestamp(SystemTime::now())),
    );
    Message::Text(Value::Object(out).to_string().into())
}

fn error(code: &str, text: &str, id: Option<&Value>) -> Message {
    message("error", id, json!({"code": code, "message": text}))
}

async fn connection(
    socket: WebSocket,
    hub: Arc<Hub>,
    tasks: Arc<TaskRegistry>,
    connect: Connect,
    request_id: Option<String>,
) {
    let (mut sink, mut incoming) = socket.split();
    let close = |code: u16, reason: &'static str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    let client = connect
        .session
        .unwrap_or_else(|| ulid::Ulid::new().to_string());
    let (handed, mut subscriptions) = mpsc::unbounded_channel();
    let refused = {
        let mut sessions = hub.sessions.lock();
        if hub
            .settings
            .max_connection_count
            .is_some_and(|max| sessions.len() >= max)
        {
            Some(close(4429, "Too many connections"))
        } else if sessions.contains_key(&client) {
            Some(close(4409, "Session already connected"))
        } else {
            sessions.insert(client.clone(), handed);
            None
        }
    };
    if let Some(refusal) = refused {
        let _ = sink.send(refusal).await;
        return;
    }
    let (out, mut queue) = mpsc::channel::<Message>(QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(message) = queue.recv().await {
            let closing = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut session = Session {
        tasks,
        request_id,
        out,
        followed: HashMap::new(),
    };
    if let Some(task) = connect.task {
        session.subscribe(&task, None);
    }
    let interval = hub.settings.ping_interval.0;
    let timeout = hub.settings.ping_timeout.0;
    let mut ping = tokio::time::interval(if interval.is_zero() {
        Duration::MAX / 4
    } else {
        interval
    });
    ping.tick().await;
    let mut awaiting_pong: Option<tokio::time::Instant> = None;
    loop {
        let pong_deadline = awaiting_pong.map(|sent| sent + timeout);
        tokio::select! {
            received = incoming.next() => match received {
                Some(Ok(Message::Text(text))) => session.handle(text.as_str()),
                Some(Ok(Message::Pong(_))) => awaiting_pong = None,
                Some(Ok(Message::Binary(_))) => {
                    session.send(error("INVALID_REQUEST", "Binary messages are not supported", None));
                }
                Some(Ok(Message::Ping(_))) => {}
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
            },
            _ = ping.tick(), if !interval.is_zero() => {
                if awaiting_pong.is_none() {
                    awaiting_pong = Some(tokio::time::Instant::now());
                    session.send(Message::Ping(Vec::new().into()));
                }
            }
            Some(task) = subscriptions.recv() => {
                session.send(message("task_state", None, state(&task)));
                session.follow(task, false);
            }
            () = sleep_until(pong_deadline) => {
                tracing::info!("a WebSocket client did not answer pings; closing it");
                session.send(close(1011, "keepalive ping timeout"));
                break;
            }
        }
        if session.out.is_closed() {
            break;
        }
    }
    for (_, follower) in session.followed.drain() {
        follower.abort();
    }
    drop(session);
    let _ = writer.await;
    hub.sessions.lock().remove(&client);
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// One client's subscriptions.
struct Session {
    tasks: Arc<TaskRegistry>,
    /// The id of the request that opened the connection: its runs carry it.
    request_id: Option<String>,
    out: mpsc::Sender<Message>,
    followed: HashMap<String, JoinHandle<()>>,
}

/// What a client may send.
#[derive(Deserialize)]
struct Incoming {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Value,
    #[serde(default)]
    data: Value,
}

#[derive(Deserialize)]
struct RunWorkflow {
    workflow_id: Option<String>,
    #[serde(default)]
    input: Value,
    #[serde(default = "yes")]
    subscribe_task: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct TaskRef {
    task_id: String,
}

/// `resume_task`: the answers by point id (none: every point goes on).
#[derive(Deserialize)]
struct ResumeTask {
    task_id: String,
    #[serde(default)]
    answer: Option<serde_json::Map<String, Value>>,
}

impl Session {
    /// Queues a message; a client too slow to take `QUEUE` of them is disconnected.
    fn send(&self, message: Message) {
        if self.out.try_send(message).is_err() {
            tracing::debug!("a WebSocket client fell behind; closing it");
        }
    }

    fn handle(&mut self, text: &str) {
        let incoming: Incoming = match serde_json::from_str::<Value>(text) {
            Err(_) => return self.send(error("INVALID_REQUEST", "Invalid JSON", None)),
            Ok(value) => match serde_json::from_value(value) {
                Ok(incoming) => incoming,
                Err(err) => {
                    return self.send(error(
                        "INVALID_REQUEST",
                        &format!("Invalid message: {err}"),
                        None,
                    ))
                }
            },
        };
        let id = Some(&incoming.id);
        let data = if incoming.data.is_null() {
            json!({})
        } else {
            incoming.data.clone()
        };
        let invalid =
            |err: serde_json::Error| error("INVALID_REQUEST", &format!("Invalid data: {err}"), id);
        match incoming.kind.as_str() {
            "run_workflow" => match serde_json::from_value::<RunWorkflow>(data) {
                Ok(run) => self.run(run, id),
                Err(err) => self.send(invalid(err)),
            },
            "subscribe_task" => match serde_json::from_value::<TaskRef>(data) {
                Ok(task) => self.subscribe(&task.task_id, id),
                Err(err) => self.send(invalid(err)),
            },
            "unsubscribe_task" => match serde_json::from_value::<TaskRef>(data) {
                Ok(task) => {
                    if let Some(follower) = self.followed.remove(&task.task_id) {
                        follower.abort();
                    }
                    self.send(message(
                        "task_unsubscribed",
                        id,
                        json!({"task_id": task.task_id}),
                    ));
                }
                Err(err) => self.send(invalid(err)),
            },
            "get_task" => match serde_json::from_value::<TaskRef>(data) {
                Ok(task) => match self.tasks.get(&task.task_id) {
                    Some(found) => self.send(message("task_state", id, state(&found))),
                    None => self.send(not_found(&task.task_id, id)),
                },
                Err(err) => self.send(invalid(err)),
            },
            "resume_task" => match serde_json::from_value::<ResumeTask>(data) {
                Ok(resume) => match self.tasks.resume(&resume.task_id, resume.answer) {
                    Ok(view) => self.send(message(
                        "task_resumed",
                        id,
                        json!({"task_id": view.task_id, "status": view.status}),
                    )),
                    Err(ResumeError::NotFound(task_id)) => self.send(not_found(&task_id, id)),
                    Err(err) => self.send(error("INVALID_REQUEST", &err.to_string(), id)),
                },
                Err(err) => self.send(invalid(err)),
            },
            "ping" => self.send(message("pong", id, json!({}))),
            other => self.send(error(
                "INVALID_REQUEST",
                &format!("Unknown message type: {other}"),
                id,
            )),
        }
    }

    fn run(&mut self, run: RunWorkflow, id: Option<&Value>) {
        let task = match self.tasks.start(
            run.workflow_id.as_deref(),
            run.input,
            (self.request_id.clone(), None),
        ) {
            Ok(task) => task,
            Err(err) => return self.send(refused(&err.failure(), id)),
        };
        self.send(message(
            "workflow_started",
            id,
            json!({"task_id": task.id, "workflow_id": task.workflow_id, "status": Status::Pending}),
        ));
        if run.subscribe_task {
            self.follow(task, true);
        }
    }

    fn subscribe(&mut self, task_id: &str, id: Option<&Value>) {
        let Some(task) = self.tasks.get(task_id) else {
            return self.send(not_found(task_id, id));
        };
        self.send(message(
            "task_subscribed",
            id,
            json!({"task_id": task.id, "state": state(&task)}),
        ));
        self.follow(task, false);
    }

    /// Sends what the task does from now on (from its start: what it already did first).
    fn follow(&mut self, task: Arc<Task>, started_here: bool) {
        let out = self.out.clone();
        let id = task.id.clone();
        let follower = tokio::spawn(async move {
            let send = |message: Message| out.try_send(message).is_ok();
            let base = json!({"task_id": task.id, "workflow_id": task.workflow_id});
            let with = |extra: Value| {
                let mut data = base.clone();
                if let (Value::Object(data), Value::Object(extra)) = (&mut data, extra) {
                    data.extend(extra);
                }
                data
            };
            if started_here
                && !send(message(
                    "task_event",
                    None,
                    with(json!({"event": "started", "status": Status::Processing})),
                ))
            {
                return;
            }
            let mut follow = std::pin::pin!(task.follow(0));
            while let Some(item) = follow.next().await {
                let sent = match item {
                    // An agent's text is output; its other steps are its job's `message` events.
                    Follow::Piece(chunk) | Follow::Step(AgentStep::Text, chunk) => {
                        send(message("task_output", None, with(json!({"chunk": chunk}))))
                    }
                    Follow::Step(..) => true,
                    Follow::Bytes(bytes) => send(message(
                        "task_output",
                        None,
                        with(json!({
                            "chunk": compose::media::encode_base64(&bytes),
                            "encoding": "base64",
                        })),
                    )),
                    Follow::Job(job) => send(message(
                        "job_event",
                        None,
                        with({
                            let mut event = json!({
                                "job_id": job.job_id,
                                "job_type": job.job_type,
                                "event": job.event.as_str(),
                                "elapsed": job.elapsed,
                            });
                            if let Some(next) = &job.next_job_id {
                                event["next_job_id"] = json!(next);
                            }
                            event
                        }),
                    )),
                    // As the original: `interrupted` with the points, `resumed` once none is left.
                    Follow::Interrupt(points) => send(message(
                        "task_event",
                        None,
                        with(match points.is_empty() {
                            true => json!({"event": "resumed", "status": Status::Processing}),
                            false => json!({
                                "event": "interrupted",
                                "status": Status::Interrupted,
                                "interrupt": points,
                            }),
                        }),
                    )),
                    Follow::End(status, _) => {
                        let view = task.view();
                        let mut event =
                            with(json!({"event": status.as_str(), "status": status.as_str()}));
                        if let Value::Object(event) = &mut event {
                            if let Some(output) = view.output {
                                event.insert("output".into(), output);
                            }
                            if let Some(failure) = view.error {
                                event.insert("error".into(), Value::from(failure.message));
                            }
                            if let Some(ms) = task.timings().1 {
                                event.insert("elapsed".into(), Value::from(ms as f64 / 1000.0));
                            }
                        }
                        send(message("task_event", None, event));
                        send(message("task_state", None, state(&task)));
                        return;
                    }
                };
                if !sent {
                    return;
                }
            }
        });
        if let Some(before) = self.followed.insert(id, follower) {
            before.abort();
        }
    }
}

fn state(task: &Task) -> Value {
    serde_json::to_value(task.view()).unwrap_or(Value::Null)
}

/// A run the gate refused, in the protocol's words (the original's codes).
fn refused(failure: &Failure, id: Option<&Value>) -> Message {
    match (failure.kind, failure.detail_text("workflow")) {
        (FailureKind::WorkflowNotFound, Some(workflow)) => error(
            "WORKFLOW_NOT_FOUND",
            &format!("Workflow '{workflow}' not found"),
            id,
        ),
        (FailureKind::ShuttingDown, _) => error("SERVICE_UNAVAILABLE", &failure.message, id),
        _ => error("INVALID_REQUEST", &failure.message, id),
    }
}

fn not_found(task_id: &str, id: Option<&Value>) -> Message {
    error("TASK_NOT_FOUND", &format!("Task '{task_id}' not found"), id)
}

/// A time as RFC 3339 in UTC with microseconds, as the original's messages carry it.
fn timestamp(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs() as i64;
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        since.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = |secs: u64, micros: u64| {
            timestamp(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.000005Z");
        assert_eq!(at(1_795_792_810, 123_456), "2026-11-27T15:20:10.123456Z");
    }
}

//! MCP (spec §15, D29): the workflows as tools, through the official SDK (`rmcp`), over
//! Streamable HTTP (an `mcp-server` adapter's own port, or `controller.mcp` beside the REST
//! API) and over stdio (a client launches `model-compose up`). A call runs its workflow as a
//! task like any other (history, metrics, run view), reports a streamed output as progress
//! notifications when the client asked for them, is cancelled when the client cancels it or
//! goes away, and answers once the run has ended or waits for a person (`resume_workflow`).

mod catalog;
mod content;
mod http;

pub use http::{adapter_router, beside_the_api};

use std::pin::pin;
use std::sync::Arc;

use futures::StreamExt;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ProgressToken, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::sse::CancelOnDrop;
use super::RequestId;
use compose::record::answer_from_text;
use compose::signature::Signature;
use compose::task::{Follow, Task, TaskRegistry};
use compose::WorkflowPlan;

/// The server's name in `initialize` when the config's `controller.name` gives none.
const DEFAULT_NAME: &str = "model-compose";

/// The workflows of one task registry, as an MCP server.
#[derive(Clone)]
pub struct Workflows {
    tasks: Arc<TaskRegistry>,
    name: String,
}

impl Workflows {
    pub fn new(tasks: Arc<TaskRegistry>, name: Option<String>) -> Self {
        Self {
            tasks,
            name: name.unwrap_or_else(|| DEFAULT_NAME.to_string()),
        }
    }

    /// The Streamable HTTP service (sessions, SSE-framed answers), to mount at one path. The
    /// Host and Origin checks and the access keys are the router's (D15–D17), not the SDK's.
    pub fn http_service(
        self,
        stop: CancellationToken,
    ) -> StreamableHttpService<Workflows, LocalSessionManager> {
        let config = StreamableHttpServerConfig::default()
            .disable_allowed_hosts()
            .disable_allowed_origins()
            .with_max_request_body_bytes(super::rest::MAX_REQUEST_BODY)
            .with_cancellation_token(stop);
        StreamableHttpService::new(
            move || Ok(self.clone()),
            Arc::new(LocalSessionManager::default()),
            config,
        )
    }

    /// Serves MCP on standard input and output until the client closes them (or `stop`).
    pub async fn serve_stdio(self, stop: CancellationToken) -> Result<(), std::io::Error> {
        let service = self
            .serve_with_ct(rmcp::transport::stdio(), stop)
            .await
            .map_err(std::io::Error::other)?;
        service.waiting().await.map_err(std::io::Error::other)?;
        Ok(())
    }

    /// Runs the workflow a tool names with the call's arguments.
    async fn run(
        &self,
        tool: &str,
        arguments: &Value,
        context: &RequestContext<RoleServer>,
    ) -> CallToolResult {
        let Some(workflow) = catalog::find(self.tasks.engine(), tool) else {
            return content::refusal(format!("Unknown tool: {tool}"));
        };
        let input = match Signature::of(&workflow.input_schema).input(tool, arguments) {
            Ok(input) => input,
            Err(err) => return content::refusal(err),
        };
        let parts = context.extensions.get::<axum::http::request::Parts>();
        let request_id = parts.and_then(|parts| RequestId::in_extensions(&parts.extensions));
        let traceparent =
            parts.and_then(|parts| crate::server::observe::traceparent(&parts.headers));
        match self
            .tasks
            .start(Some(&workflow.id), input, (request_id, traceparent))
        {
            Ok(task) => settle(task, &workflow, context, 0).await,
            Err(err) => content::refusal(err.failure().message),
        }
    }

    /// `resume_workflow`: answers an interrupted run's points, then answers as its call would.
    async fn resume(
        &self,
        arguments: &Value,
        context: &RequestContext<RoleServer>,
    ) -> CallToolResult {
        let Some(task_id) = arguments.get("task_id").and_then(Value::as_str) else {
            return content::refusal("resume_workflow needs the interrupted run's task_id");
        };
        let answer = match answers(arguments.get("answer")) {
            Ok(answer) => answer,
            Err(err) => return content::refusal(err),
        };
        let (Some(task), Some(workflow)) = (
            self.tasks.get(task_id),
            self.tasks
                .get(task_id)
                .and_then(|task| catalog::by_id(self.tasks.engine(), &task.workflow_id)),
        ) else {
            return content::refusal(format!("Task not found: {task_id}"));
        };
        // Progress reports what comes after the pause: the call that paused had the rest.
        let from = task.pieces_so_far();
        match self.tasks.resume(task_id, answer) {
            Ok(_) => settle(task, &workflow, context, from).await,
            Err(err) => content::refusal(err.to_string()),
        }
    }
}

/// The `answer` of `resume_workflow`: a mapping of point ids to answers, or its JSON text
/// (what the original asked for, and then could not read: OD18); none answers every point
/// with null.
fn answers(answer: Option<&Value>) -> Result<Option<Map<String, Value>>, String> {
    let wrong = || {
        "resume_workflow's answer maps each interrupt point's id to its answer, as a mapping \
         or its JSON text"
            .to_string()
    };
    match answer {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map.clone())),
        Some(Value::String(text)) => match answer_from_text(text) {
            Value::Object(map) => Ok(Some(map)),
            Value::Null => Ok(None),
            _ => Err(wrong()),
        },
        Some(_) => Err(wrong()),
    }
}

/// Waits until the run ends or waits for a person, reporting its streamed text from the
/// `from`-th piece on as progress when the client gave a progress token; a client that
/// cancels (or leaves) cancels the run.
async fn settle(
    task: Arc<Task>,
    workflow: &WorkflowPlan,
    context: &RequestContext<RoleServer>,
    from: usize,
) -> CallToolResult {
    let owner = CancelOnDrop::new(Arc::clone(&task));
    let progress = context.meta.get_progress_token();
    let settled = async {
        if let Some(token) = progress {
            report_progress(&task, (token, from), &context.peer).await;
        }
        task.settled().await
    };
    tokio::select! {
        view = settled => {
            owner.disarm();
            content::of_run(&view, &workflow.output_schema)
        }
        () = context.ct.cancelled() => {
            task.request_cancel("the MCP client cancelled the call");
            content::refusal("the call was cancelled")
        }
    }
}

/// Sends each piece of streamed text from the `from`-th on as a progress notification
/// (progress: how many pieces so far; message: the piece), until the run ends or waits for a
/// person.
async fn report_progress(
    task: &Arc<Task>,
    (token, from): (ProgressToken, usize),
    peer: &Peer<RoleServer>,
) {
    let mut follow = pin!(task.follow(from));
    let mut pieces = u32::try_from(from).unwrap_or(u32::MAX);
    while let Some(item) = follow.next().await {
        if let Some(text) = item.text() {
            pieces = pieces.saturating_add(1);
            let note =
                ProgressNotificationParam::new(token.clone(), f64::from(pieces)).with_message(text);
            // A client that stopped reading still gets its answer, or its cancel handled.
            let _ = peer.notify_progress(note).await;
            continue;
        }
        match item {
            Follow::Interrupt(points) if !points.is_empty() => return,
            Follow::End(..) => return,
            _ => {}
        }
    }
}

impl ServerHandler for Workflows {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_server_info(
            Implementation::new(self.name.clone(), env!("CARGO_PKG_VERSION")),
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult {
            tools: catalog::tools(self.tasks.engine()),
            ..Default::default()
        })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let arguments = Value::Object(request.arguments.unwrap_or_default());
        let result = match request.name.as_ref() {
            catalog::RESUME => self.resume(&arguments, &context).await,
            tool => self.run(tool, &arguments, &context).await,
        };
        Ok(result.into())
    }
}

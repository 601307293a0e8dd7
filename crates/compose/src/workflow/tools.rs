//! An agent's tools (spec §10.3, §10.5): workflows of the config, described to the model by
//! their inputs (real JSON types, descriptions, defaults, any input name: not OD15–OD17,
//! OD30), and tools the caller runs, answered through a pause. The calls of one turn to
//! workflows run at once; each result goes back to the model as a `tool` message, an unknown
//! tool, bad arguments or a failed workflow as an error result the model can read.

use std::sync::Arc;

use futures::stream::FuturesUnordered;
use futures::{Stream, StreamExt};
use serde_json::{json, Map, Value};

use super::agent::tool_message;
use super::nested::WorkflowCall;
use super::stream::Produced;
use super::{run_nested, Run};
use crate::binding::to_text;
use crate::component::{mcp_client, McpClient};
use crate::config;
use crate::error::RunError;
use crate::metrics::Usage;
use crate::record::{Phase, Point};
use crate::signature::Signature;
use crate::traces::{within, Inner};
use opentelemetry::KeyValue;

/// One of an agent's `tools`.
pub(super) enum Tool {
    /// Runs a workflow of the config (private ones too).
    Workflow(WorkflowCall),
    /// Run by the caller: the run pauses for its result (`{name, description, parameters}`).
    External { name: String, schema: Value },
    /// Every tool of an MCP server (`{mcp: <mcp-client component>}`), listed as a run starts.
    Mcp(Arc<McpClient>),
}

impl Tool {
    pub fn workflow(&self) -> Option<&WorkflowCall> {
        match self {
            Tool::Workflow(call) => Some(call),
            Tool::External { .. } | Tool::Mcp(_) => None,
        }
    }
}

/// An agent's `tools` as written: workflow ids, `{mcp: <component>}` (found by `mcp`), or
/// inline schemas.
pub(super) fn compile(
    written: &[Value],
    mcp: impl Fn(&str) -> Option<Arc<McpClient>>,
) -> Result<Vec<Tool>, String> {
    written
        .iter()
        .enumerate()
        .map(|(index, entry)| match entry {
            Value::Object(fields) if fields.contains_key("mcp") => {
                let id = fields
                    .get("mcp")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                mcp(id).map(Tool::Mcp).ok_or_else(|| {
                    format!("tools[{index}]: '{id}' is not an mcp-client component of the config")
                })
            }
            Value::String(id) => Ok(Tool::Workflow(WorkflowCall {
                workflow: id.clone(),
                input: None,
                output: None,
            })),
            Value::Object(fields) => {
                let Some(name) = fields.get("name").and_then(Value::as_str) else {
                    return Err(format!("tools[{index}]: a tool needs a 'name'"));
                };
                let schema = fields
                    .iter()
                    .filter(|(_, value)| !value.is_null())
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect();
                Ok(Tool::External {
                    name: name.to_string(),
                    schema: Value::Object(schema),
                })
            }
            other => Err(format!(
                "tools[{index}]: a tool is a workflow's id or a mapping with a 'name', got {other}"
            )),
        })
        .collect()
}

/// A tool call in the model's message.
pub(super) struct Call {
    pub id: String,
    pub name: String,
    pub arguments: Value,
}

/// The tool calls of a message (§10.2): its `content` blocks of type `tool_call`.
pub(super) fn calls(message: &Value) -> Result<Vec<Call>, RunError> {
    let malformed = |what: &str| {
        RunError::Flow(format!(
            "the agent's model gave {what}, not a message (a mapping with a role and a list of \
             content blocks): check the model's output mapping"
        ))
    };
    let Value::Object(message) = message else {
        return Err(malformed(&format!("{message}")));
    };
    let blocks = match message.get("content") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(blocks)) => blocks,
        Some(_) => return Err(malformed("a message whose content is not a list")),
    };
    let mut calls = Vec::new();
    for block in blocks {
        let Value::Object(block) = block else {
            return Err(malformed("a content block that is not a mapping"));
        };
        if block.get("type").and_then(Value::as_str) != Some("tool_call") {
            continue;
        }
        let text = |key: &str| block.get(key).and_then(Value::as_str).unwrap_or_default();
        calls.push(Call {
            id: text("id").to_string(),
            name: text("name").to_string(),
            arguments: block.get("arguments").cloned().unwrap_or_else(|| json!({})),
        });
    }
    Ok(calls)
}

/// The tools as one run of an agent sees them.
pub(super) struct Tools<'t> {
    entries: Vec<Entry<'t>>,
    /// What `${tools}` reads; none when there are no tools (the original's unknown source).
    schemas: Option<Value>,
}

/// A tool by the name the model calls it, and what its workflow takes.
struct Entry<'t> {
    name: String,
    tool: &'t Tool,
    signature: Signature,
}

impl<'t> Tools<'t> {
    /// Each tool's schema, workflow tools' made from their workflows' inputs, an MCP server's
    /// as it lists them.
    pub async fn new(tools: &'t [Tool], run: &Run<'_>) -> Result<Self, RunError> {
        let mut entries = Vec::with_capacity(tools.len());
        let mut schemas = Vec::with_capacity(tools.len());
        for tool in tools {
            if let Tool::Mcp(client) = tool {
                for listed in client.list_tools().await?.iter() {
                    let mut schema = Map::new();
                    schema.insert("name".into(), listed.name.to_string().into());
                    if let Some(about) = &listed.description {
                        schema.insert("description".into(), about.to_string().into());
                    }
                    let parameters = Value::Object((*listed.input_schema).clone());
                    schema.insert("parameters".into(), parameters.clone());
                    schemas.push(Value::Object(schema));
                    entries.push(Entry {
                        name: listed.name.to_string(),
                        tool,
                        signature: Signature::described(parameters),
                    });
                }
                continue;
            }
            let (name, schema, signature) = match tool {
                Tool::Workflow(call) => {
                    let plan =
                        config::resolve(run.workflows, &call.workflow, |w| &w.id, |w| w.default)
                            .ok_or_else(|| RunError::WorkflowNotFound(call.workflow.clone()))?;
                    let name = plan.name.clone().unwrap_or_else(|| plan.id.clone());
                    let signature = Signature::of(&plan.input_schema);
                    let mut schema = Map::new();
                    schema.insert("name".into(), name.clone().into());
                    if let Some(about) = plan.description.as_ref().or(plan.title.as_ref()) {
                        schema.insert("description".into(), about.clone().into());
                    }
                    schema.insert("parameters".into(), signature.parameters.clone());
                    (name, Value::Object(schema), signature)
                }
                Tool::External { name, schema } => (
                    name.clone(),
                    schema.clone(),
                    Signature::described(Value::Null),
                ),
                Tool::Mcp(_) => continue,
            };
            schemas.push(schema);
            entries.push(Entry {
                name,
                tool,
                signature,
            });
        }
        Ok(Self {
            entries,
            schemas: (!schemas.is_empty()).then_some(Value::Array(schemas)),
        })
    }

    pub fn schemas(&self) -> Option<&Value> {
        self.schemas.as_ref()
    }

    fn find(&self, name: &str) -> Option<&Entry<'t>> {
        self.entries.iter().find(|entry| entry.name == name)
    }

    /// The `tool` messages answering `calls`, each with its call's index, as they come:
    /// unknown tools at once (as errors), the workflow tools' as each ends (they run at once),
    /// then those the caller runs (one pause for all of them).
    pub fn answer<'s, 'r: 's>(
        &'s self,
        calls: &'s [Call],
        (job_id, run_id): (&'s str, &'s str),
        run: &'s Run<'r>,
        context: &'s Value,
        usage: &'s Arc<Usage>,
    ) -> impl Stream<Item = Result<(usize, Value), RunError>> + Send + 's {
        async_stream::try_stream! {
            let mut external = Vec::new();
            let mut running: FuturesUnordered<futures::future::BoxFuture<'_, (usize, Value)>> =
                FuturesUnordered::new();
            for (index, call) in calls.iter().enumerate() {
                match self.find(&call.name) {
                    Some(
                        entry @ Entry {
                            tool: Tool::Workflow(workflow),
                            ..
                        },
                    ) => running.push(Box::pin(async move {
                        let answer = entry.run(workflow, call, run, context, usage);
                        (index, traced(call, answer).await)
                    })),
                    Some(Entry {
                        tool: Tool::Mcp(client),
                        ..
                    }) => running.push(Box::pin(async move {
                        (index, traced(call, ask_server(client, call)).await)
                    })),
                    Some(_) => external.push((index, call)),
                    None => {
                        let text = format!("Error: Unknown tool '{}'", call.name);
                        let answer = std::future::ready(tool_message(call, text, true));
                        yield (index, traced(call, answer).await);
                    }
                }
            }
            while let Some(answered) = running.next().await {
                yield answered;
            }
            if !external.is_empty() {
                let asked: Vec<Value> = external
                    .iter()
                    .map(|(_, c)| json!({"id": c.id, "name": c.name, "arguments": c.arguments}))
                    .collect();
                let metadata = json!({"kind": "tool_calls", "tool_calls": asked});
                let point = Point {
                    id: ulid::Ulid::new().to_string(),
                    job_id: job_id.to_string(),
                    run_id: run_id.to_string(),
                    phase: Phase::After,
                    message: Some("Agent is waiting for tool results.".into()),
                    metadata: Some(run.redactor.value(&metadata).unwrap_or(metadata)),
                };
                let answer = run.pauses.ask(point).await?;
                for (index, call) in external {
                    let message = match answer.get(&call.id) {
                        Some(result) => tool_message(call, tool_text(result), false),
                        None => {
                            let text =
                                format!("Error: no result provided for tool_call '{}'", call.id);
                            tool_message(call, text, true)
                        }
                    };
                    yield (index, message);
                }
            }
        }
    }
}

impl Entry<'_> {
    /// Runs the tool's workflow for `call`, inside the run: its result, or its error, as the
    /// model reads it.
    async fn run(
        &self,
        workflow: &WorkflowCall,
        call: &Call,
        run: &Run<'_>,
        context: &Value,
        usage: &Arc<Usage>,
    ) -> Value {
        let input = match self.input(&call.arguments) {
            Ok(input) => input,
            Err(text) => return tool_message(call, text, true),
        };
        let output = match run_nested(workflow, &input, run, context, usage).await {
            Ok(output) => Produced::from(output).drain().await,
            Err(err) => Err(err),
        };
        match output {
            Ok(value) => tool_message(call, tool_text(&value), false),
            Err(err) => tool_message(call, err.failure(run.secrets).message, true),
        }
    }

    /// The workflow's input from the call's arguments, or the error the model is told.
    fn input(&self, arguments: &Value) -> Result<Value, String> {
        self.signature
            .input(&self.name, arguments)
            .map_err(|err| format!("Error: {err}"))
    }
}

/// A tool call's answer, in a span of its own when the run is traced (OpenTelemetry's
/// `execute_tool`): what the tool runs is its child, an error answer its error.
async fn traced(call: &Call, answer: impl std::future::Future<Output = Value>) -> Value {
    let span = Inner::start(
        || format!("execute_tool {}", call.name),
        || {
            vec![
                KeyValue::new("gen_ai.operation.name", "execute_tool"),
                KeyValue::new("gen_ai.tool.name", call.name.clone()),
                KeyValue::new("gen_ai.tool.call.id", call.id.clone()),
            ]
        },
    );
    let answered = within(span.context(), answer).await;
    let result = answered["content"].get(0);
    if result.and_then(|r| r.get("is_error")) == Some(&Value::Bool(true)) {
        let text = result
            .and_then(|r| r.get("content"))
            .and_then(Value::as_str);
        span.failed(text.unwrap_or("the tool failed"));
    }
    answered
}

/// Calls an MCP server's tool for `call`: its result as the model reads it, or its error.
async fn ask_server(client: &McpClient, call: &Call) -> Value {
    let arguments = match &call.arguments {
        Value::Object(arguments) => arguments.clone(),
        Value::Null => Map::new(),
        other => {
            let text = format!(
                "Error: tool '{}' takes its arguments as a mapping, got {other}",
                call.name
            );
            return tool_message(call, text, true);
        }
    };
    match client.call_tool(&call.name, arguments).await {
        Ok(result) => {
            let text = mcp_client::as_text(&mcp_client::response(&result));
            let failed = result.is_error == Some(true);
            tool_message(
                call,
                if failed {
                    format!("Error: {text}")
                } else {
                    text
                },
                failed,
            )
        }
        Err(err) => tool_message(call, format!("Error: {err}"), true),
    }
}

/// A tool's result as the model reads it: text as it is, anything else in its JSON spelling
/// (D10, D20: `null`, `true`, `{"a": 1}`).
fn tool_text(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        other => to_text(other),
    }
}

//! The `agent` component (spec §10): a model that calls tools until it answers. The agent
//! keeps the conversation in the provider-neutral messages of §10.2, asks its model (any
//! component's action; the provider's wire format is the model's templates, in YAML) for the
//! next message, runs the tools it calls (workflows of the config, those of one turn at once;
//! tools the caller runs through a pause, §10.5.5), adds their results and asks again, at
//! most `max_iteration_count` times. A model whose action streams answers in canonical deltas
//! (D28, `deltas`): the agent streams its text as it comes.

use std::sync::Arc;

use futures::StreamExt;
use serde_json::{json, Map, Value};

use super::composite::{self, Sink};
use super::deltas::{self, Deltas, Texts};
use super::nested::WorkflowCall;
use super::pause::Working;
use super::perform::call;
use super::schedule::Said;
use super::stream::Produced;
use super::tools::{self, Call, Tools};
use super::work::{Parts, Work};
use super::{JobPlan, Run};
use crate::binding::{Binding, Expr, Owner, Scope};
use crate::component::Output;
use crate::config::{self, DEFAULT_REF};
use crate::error::RunError;
use crate::metrics::Usage;
use crate::record::JobStage;
use crate::traces::{within, Inner};
use opentelemetry::KeyValue;

/// An agent's action, compiled with its component's model and tools.
pub struct AgentCall {
    /// The model's action (an http-client's request, most often).
    model: Work,
    /// What the model's action gets, from `${messages}` and `${tools}` (none: null).
    model_input: Option<Binding>,
    /// The next message, from the model's `${output}` (none: the output itself).
    model_output: Option<Binding>,
    instructions: Option<Binding>,
    /// The conversation so far, before the prompt.
    history: Option<Binding>,
    prompt: Option<Binding>,
    pub(super) tools: Vec<tools::Tool>,
    /// The most model calls: the action's (a number or a template), else the component's.
    iterations: (Option<Binding>, u32),
    /// The messages as a stream, each as it is added.
    pub(super) streaming: bool,
    /// The action's `output`, from `${result}` (the messages); none: the messages.
    output: Option<Binding>,
}

impl AgentCall {
    /// `action` of `agent`, its model resolved among the config's components.
    pub(super) fn compile(
        agent: &config::Agent,
        action: &config::Action,
        at: &str,
        parts: &Parts,
    ) -> Result<Self, String> {
        let template = |value: &Option<Value>, field: &str| {
            value
                .as_ref()
                .map(Binding::compile)
                .transpose()
                .map_err(|err| format!("{at}: {field}: {err}"))
        };
        let Some(model) = &agent.model else {
            return Err(format!("{at}: agent '{}' has no 'model'", agent.id));
        };
        let index = config::resolve_index(
            parts.configured,
            &model.component,
            config::Component::id,
            config::Component::is_default,
        )
        .ok_or_else(|| format!("{at}: model component '{}' not found", model.component))?;
        let component = &parts.configured[index];
        if matches!(component, config::Component::Agent(_)) {
            return Err(format!(
                "{at}: the model of agent '{}' is an agent: it must be a component that answers",
                agent.id
            ));
        }
        let model_action =
            config::resolve_index(component.actions(), &model.action, |a| &a.id, |a| a.default)
                .ok_or_else(|| match model.action.as_str() {
                    DEFAULT_REF => format!(
                        "{at}: model component '{}' has no single or default action",
                        component.id()
                    ),
                    id => format!(
                        "{at}: model action '{id}' not found in '{}'",
                        component.id()
                    ),
                })?;
        let built = parts.components.get(index);
        Ok(Self {
            model: Work::action_of((component, built), model_action, at, parts)?,
            model_input: template(&model.input, "model.input")?,
            model_output: template(&model.output, "model.output")?,
            instructions: template(&agent.instructions, "instructions")?,
            history: template(&action.messages, "messages")?,
            prompt: template(&action.prompt, "prompt")?,
            tools: tools::compile(&agent.tools, |id| {
                let index = parts.configured.iter().position(|c| c.id() == id)?;
                match parts.components.get(index) {
                    Some(super::work::Built::Mcp(client)) => Some(Arc::clone(client)),
                    _ => None,
                }
            })
            .map_err(|err| format!("{at}: {err}"))?,
            iterations: (
                template(&action.max_iteration_count, "max_iteration_count")?,
                agent.max_iteration_count,
            ),
            streaming: action.streaming == Some(Value::Bool(true)),
            output: template(&action.output, "output")?.filter(|o| !o.is_exactly("result")),
        })
    }

    /// The templates that read the action's input.
    pub(super) fn exprs(&self) -> Vec<&Expr> {
        let templates = [
            &self.instructions,
            &self.history,
            &self.prompt,
            &self.iterations.0,
        ];
        templates
            .into_iter()
            .flatten()
            .flat_map(Binding::exprs)
            .collect()
    }

    /// The action's output template, if it maps the messages.
    pub(super) fn output(&self) -> Option<&Binding> {
        self.output.as_ref()
    }

    /// Whether some of its tools are run by the caller (the run pauses for their results).
    pub(super) fn asks_caller(&self) -> bool {
        self.tools.iter().any(|tool| tool.workflow().is_none())
    }

    /// The workflows its tools run.
    pub(super) fn tool_workflows(&self) -> impl Iterator<Item = &WorkflowCall> {
        self.tools.iter().filter_map(tools::Tool::workflow)
    }

    /// Runs the agent on its action's `input` (a caller's when `owner` says so) in `job`:
    /// the messages as they are at the end (or, `streaming`, as they are added, into `sink`
    /// when the run's answer is theirs). Each message added is told as the job's step.
    pub(super) async fn run(
        &self,
        job: &JobPlan,
        (input, owner): (Value, Owner<'_>),
        run: &Run<'_>,
        (context, usage): (&Value, &Arc<Usage>),
        working: &mut Working<'_>,
        mut sink: Option<Sink>,
    ) -> Result<Output, RunError> {
        let fetcher = &**run.fetcher;
        let scope = || {
            Scope::new()
                .with_owned("input", &input, owner)
                .with("context", context)
        };
        let mut messages = Vec::new();
        let text = |role: &str, text: Value| json!({"role": role, "content": [{"type": "text", "text": text}]});
        if let Some(template) = &self.instructions {
            messages.push(text("system", fetcher.render(template, scope()).await?));
        }
        if let Some(template) = &self.history {
            match fetcher.render(template, scope()).await? {
                Value::Array(earlier) => {
                    for message in earlier {
                        messages.push(canonical(message)?);
                    }
                }
                Value::Null => {}
                other => return Err(not_a_message(&other)),
            }
        }
        if let Some(template) = &self.prompt {
            messages.push(text("user", fetcher.render(template, scope()).await?));
        }
        let first_added = messages.len();
        let limit = match &self.iterations.0 {
            Some(template) => iterations(fetcher.render(template, scope()).await?)?,
            None => self.iterations.1,
        };
        let tools = Tools::new(&self.tools, run).await?;
        let run_id = ulid::Ulid::new().to_string();
        let mut texts = Texts::default();
        for iteration in 1..=limit {
            // The iteration is a span of the job's, when traced: its model call and its tools
            // run inside it.
            let turn = Inner::start(
                || format!("agent iteration {iteration}"),
                || {
                    vec![KeyValue::new(
                        "model_compose.iteration",
                        i64::from(iteration),
                    )]
                },
            );
            // `${messages}` reads the list itself (lent, not copied, each turn).
            let listed = Value::Array(std::mem::take(&mut messages));
            let mut seen = scope().with("messages", &listed);
            if let Some(schemas) = tools.schemas() {
                seen = seen.with("tools", schemas);
            }
            let model_input = match &self.model_input {
                Some(template) => fetcher.render(template, seen).await?,
                None => Value::Null,
            };
            let Value::Array(lent) = listed else {
                unreachable!("the messages were lent as a list")
            };
            messages = lent;
            let said = call(
                &self.model,
                (model_input, owner),
                run,
                context,
                usage,
                working,
            );
            let message = match within(turn.context(), said).await? {
                // A streamed answer is canonical deltas (D28): its text goes out as it comes,
                // read by the run's answer.
                Output::Stream(chunks) => match sink.as_mut() {
                    Some(sink) => {
                        let (text, answered) = deltas::streamed(chunks, std::mem::take(&mut texts));
                        if sink.send(text).await.is_err() {
                            return Ok(Output::Value(Value::Null));
                        }
                        let Ok((deltas, kept)) = answered.await else {
                            // Dropped unread: nobody reads the run any more.
                            return Ok(Output::Value(Value::Null));
                        };
                        texts = kept;
                        deltas?.message()
                    }
                    None => {
                        let mut chunks = chunks;
                        let (mut deltas, mut added) = (Deltas::default(), Vec::new());
                        while let Some(chunk) = chunks.next().await {
                            deltas.add(chunk?, &mut added)?;
                            added.clear();
                        }
                        deltas.message()
                    }
                },
                said => {
                    let said = Produced::from(said).drain().await?;
                    let message = match &self.model_output {
                        Some(template) => {
                            fetcher
                                .render(template, scope().with("output", &said))
                                .await?
                        }
                        None => said,
                    };
                    // A whole answer's text goes out whole.
                    if sink.is_some() {
                        if let Some(text) = text_of(&message) {
                            if !told(&mut sink, texts.next(text)).await {
                                return Ok(Output::Value(Value::Null));
                            }
                        }
                    }
                    message
                }
            };
            texts.ended();
            let calls = tools::calls(&message)?;
            let step = |message: &Value| {
                let said = Said {
                    value: Some(message),
                    ..Said::default()
                };
                (run.tell)(job, JobStage::Message, said);
            };
            step(&message);
            // The message, then each call as it starts.
            let called = blocks(&message, "tool_call").cloned();
            let mut sent = told(&mut sink, message.clone()).await;
            for call in called.collect::<Vec<_>>() {
                sent = sent && told(&mut sink, call).await;
            }
            if !sent {
                return Ok(Output::Value(Value::Null));
            }
            messages.push(message);
            if !calls.is_empty() {
                // Each result is told as it comes; the messages keep the calls' order.
                let mut results: Vec<Option<Value>> = vec![None; calls.len()];
                let answering = async {
                    let answers = tools.answer(&calls, (&job.id, &run_id), run, context, usage);
                    let mut answers = std::pin::pin!(answers);
                    while let Some(answered) = answers.next().await {
                        let (index, result) = answered?;
                        step(&result);
                        let block = blocks(&result, "tool_result").next().cloned();
                        if let Some(block) = block {
                            if !told(&mut sink, block).await {
                                return Ok(false);
                            }
                        }
                        results[index] = Some(result);
                    }
                    Ok::<_, RunError>(true)
                };
                if !working.idle(within(turn.context(), answering)).await? {
                    return Ok(Output::Value(Value::Null));
                }
                for result in results.into_iter().flatten() {
                    if !told(&mut sink, result.clone()).await {
                        return Ok(Output::Value(Value::Null));
                    }
                    messages.push(result);
                }
            }
            if calls.is_empty() {
                break;
            }
            if iteration == limit {
                let job_id = &job.id;
                tracing::warn!(
                    job = job_id,
                    "agent of job '{job_id}' reached its max_iteration_count ({limit}) with tool \
                     calls answered but no reply: its last message is a tool result"
                );
            }
        }
        if sink.is_some() {
            return Ok(Output::Value(Value::Null));
        }
        if self.streaming {
            // A stream read by another job: the messages added, as the original streams them.
            return Ok(Output::Value(Value::Array(messages.split_off(first_added))));
        }
        let result = Value::Array(messages);
        Ok(Output::Value(match &self.output {
            Some(template) => {
                let scope = scope().with("result", &result);
                fetcher.render(template, scope).await?
            }
            None => result,
        }))
    }
}

/// Sends `chunk` into `sink`, if there is one: whether the run's answer is still read (a
/// run nobody reads any more is over).
async fn told(sink: &mut Option<Sink>, chunk: Value) -> bool {
    match sink.as_mut() {
        Some(sink) => sink.send(composite::one(chunk)).await.is_ok(),
        None => true,
    }
}

/// The blocks of `message` of type `kind`.
fn blocks<'m>(message: &'m Value, kind: &'m str) -> impl Iterator<Item = &'m Value> {
    let content = message.get("content").and_then(Value::as_array);
    content
        .into_iter()
        .flatten()
        .filter(move |block| block.get("type").and_then(Value::as_str) == Some(kind))
}

/// The text of a message's text blocks, joined; none when it has none.
fn text_of(message: &Value) -> Option<String> {
    let text: String = blocks(message, "text")
        .filter_map(|block| block.get("text").and_then(Value::as_str))
        .collect();
    (!text.is_empty()).then_some(text)
}

/// An earlier message as the agent keeps it: `{role, content}` with a text `content` becomes
/// one text block; one with a list of blocks is kept as it is.
fn canonical(message: Value) -> Result<Value, RunError> {
    let role = message.get("role").and_then(Value::as_str);
    match (role, message.get("content")) {
        (Some(role), Some(Value::String(text))) => {
            Ok(json!({"role": role, "content": [{"type": "text", "text": text}]}))
        }
        (Some(_), Some(Value::Array(_))) => Ok(message),
        _ => Err(not_a_message(&message)),
    }
}

fn not_a_message(value: &Value) -> RunError {
    RunError::Flow(format!(
        "an agent's messages are a list of {{role, content}} mappings (content a text or a \
         list of blocks), got {value}"
    ))
}

/// A rendered `max_iteration_count`: a whole number of at least 1.
fn iterations(value: Value) -> Result<u32, RunError> {
    let count = match &value {
        Value::Number(n) => n.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    };
    count
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            RunError::Flow(format!(
                "an agent's max_iteration_count must be a whole number of at least 1, got {value}"
            ))
        })
}

/// A tool call's result as the model reads it: a text message of role `tool`.
pub(super) fn tool_message(call: &Call, content: String, is_error: bool) -> Value {
    let mut result = Map::new();
    result.insert("type".into(), "tool_result".into());
    result.insert("id".into(), call.id.clone().into());
    result.insert("content".into(), content.into());
    if is_error {
        result.insert("is_error".into(), true.into());
    }
    json!({"role": "tool", "content": [result]})
}

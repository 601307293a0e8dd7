//! What the web UI's server functions do, over the task registry and the history store.

use std::sync::Arc;
use std::time::Duration;

use compose::record::{title_of, Conversation, ConversationSummary, JobStage, Status, TokenUsage};
use compose::schema::Variable;
use compose::task::{Follow, Task, TaskRegistry};
use compose::workflow::Access;
use compose::{AgentStep, WorkflowPlan};
use futures::{Stream, StreamExt};
use serde::Serialize;
use serde_json::Value;

use crate::server::markdown::{self, Blocks};
use crate::server::media;
use crate::server::sse::{self, CancelOnDrop};
use crate::server_fns::{
    event, ChatAnswer, ChatBlock, ChatConversation, ChatEnd, ChatFirstToken, ChatStart, ChatTurn,
    InputField, Range, WorkflowInfo,
};

/// The public workflows, with the inputs the settings are built from.
pub fn workflows(tasks: &TaskRegistry) -> Vec<WorkflowInfo> {
    tasks
        .engine()
        .public_workflows()
        .map(|w| {
            let inputs: Vec<InputField> = w
                .input_schema
                .iter()
                .filter_map(|v| {
                    let name = v.name.clone()?;
                    Some(InputField {
                        range: range_of(
                            &name,
                            &v.kind,
                            v.subtype.as_deref(),
                            v.conversion.as_ref().and_then(|c| c.attrs.as_deref()),
                        ),
                        // A file input written as text (`as image;base64`) is a text field.
                        kind: if v.is_list {
                            "list".into()
                        } else if compose::binding::is_media(&v.kind) && v.format.is_some() {
                            "text".into()
                        } else {
                            v.kind.clone()
                        },
                        name,
                        subtype: v.subtype.clone(),
                        default: v.default.clone(),
                        required: v.required,
                        description: v.description.clone(),
                    })
                })
                .collect();
            WorkflowInfo {
                id: w.id.clone(),
                name: w.name.clone(),
                title: w.title.clone(),
                description: w.description.clone(),
                conversational: w.is_conversation(),
                inputs,
                streams: w.streams(),
            }
        })
        .collect()
}

/// The bounds of a number input: declared (`as number/range[0,1,0.05]`), or those of the
/// sampling parameters every OpenAI-style API shares; none for any other number.
fn range_of(name: &str, kind: &str, subtype: Option<&str>, attrs: Option<&str>) -> Option<Range> {
    if kind != "number" {
        return None;
    }
    if subtype == Some("range") {
        let bounds: Vec<f64> = attrs?
            .split(',')
            .map(|b| b.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .ok()?;
        return match bounds.as_slice() {
            [min, max] if min < max => Some(Range {
                min: *min,
                max: *max,
                step: (max - min) / 100.0,
            }),
            [min, max, step] if min < max && *step > 0.0 => Some(Range {
                min: *min,
                max: *max,
                step: *step,
            }),
            _ => None,
        };
    }
    let (min, max, step) = match name {
        "temperature" => (0.0, 2.0, 0.1),
        "top_p" => (0.0, 1.0, 0.05),
        "presence_penalty" | "frequency_penalty" => (-2.0, 2.0, 0.1),
        _ => return None,
    };
    Some(Range { min, max, step })
}

/// How long the chat stream gathers the pieces after the first into one event: the page
/// redraws at most every 50 ms anyway, and an event per token (one every few milliseconds)
/// would cost the browser more than the drawing.
const GATHER: Duration = Duration::from_millis(25);

/// A chat turn to run.
pub struct ChatRun {
    pub workflow_id: String,
    pub input: Value,
    /// The prompt as the person wrote it (the input may hold more: earlier turns).
    pub prompt: String,
    pub conversation_id: Option<String>,
    pub position: Option<u32>,
    /// The id of the request that asked for it.
    pub request_id: Option<String>,
}

fn named(name: &str, data: &impl Serialize) -> String {
    sse::named(name, &serde_json::to_string(data).unwrap_or_default())
}

/// Starts the run, records it as a turn of its conversation, and tells how it goes as an
/// event stream (see [`crate::server_fns::event`]): the text as it comes, and each finished block of
/// it rendered.
pub fn chat(tasks: Arc<TaskRegistry>, run: ChatRun) -> impl Stream<Item = String> + Send + 'static {
    async_stream::stream! {
        let task = match tasks.start(Some(&run.workflow_id), run.input, (run.request_id, None)) {
            Ok(task) => task,
            Err(err) => {
                yield named(event::END, &ChatEnd {
                    status: Status::Failed,
                    error: Some(err.failure()),
                    duration_ms: None,
                    usage: None,
                    blocks: Vec::new(),
                    output: None,
                });
                return;
            }
        };
        let _owner = CancelOnDrop::new(Arc::clone(&task));
        // A new conversation's id is made now: the run's trace names it, however soon it ends.
        let conversation = match run.conversation_id {
            Some(id) => TurnOf::Going(id),
            None => TurnOf::New(ulid::Ulid::new().to_string()),
        };
        let _ = task.conversation_id.set(conversation.id().to_string());
        let (conversation_id, position, version) =
            match in_conversation(&tasks, &run.workflow_id, conversation, run.position, &run.prompt, &task).await {
                Ok((id, position, version)) => (Some(id), Some(position), Some(version)),
                Err(err) => {
                    tracing::warn!(task = %task.id, "cannot record the conversation: {err}");
                    (None, None, None)
                }
            };
        yield named(event::START, &ChatStart { task_id: task.id.clone(), conversation_id, position, version });
        let mut blocks = Blocks::default();
        let mut follow = std::pin::pin!(task.follow(0));
        let mut first = true;
        let mut next = follow.next().await;
        while let Some(item) = next.take() {
            // An agent's text is its answer's; its other steps come as its job's events.
            let item = match item {
                Follow::Piece(text) | Follow::Step(AgentStep::Text, text) => Follow::Piece(text),
                item => item,
            };
            match item {
                Follow::Piece(mut text) => {
                    if std::mem::take(&mut first) {
                        let after_ms = task.timings().0.unwrap_or_default();
                        yield named(event::FIRST_TOKEN, &ChatFirstToken { after_ms });
                    } else {
                        // Later pieces are gathered for a moment into one event.
                        let until = tokio::time::Instant::now() + GATHER;
                        loop {
                            match tokio::time::timeout_at(until, follow.next()).await {
                                Ok(Some(
                                    Follow::Piece(more) | Follow::Step(AgentStep::Text, more),
                                )) => text.push_str(&more),
                                Ok(end) => {
                                    next = end;
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                    }
                    yield named(event::PIECE, &text);
                    for block in blocks.push(&text) {
                        yield named(event::BLOCK, &ChatBlock { html: block.html, consumed: block.consumed });
                    }
                    if next.is_none() {
                        next = follow.next().await;
                    }
                }
                // An agent's steps are shown as they happen.
                Follow::Job(job) if job.event == JobStage::Message => {
                    yield named(event::STEP, &job);
                    next = follow.next().await;
                }
                // Bytes (audio, an image) are shown whole at the end; other jobs are not shown.
                Follow::Bytes(_) | Follow::Job(_) | Follow::Step(..) => next = follow.next().await,
                Follow::Interrupt(points) => {
                    yield named(event::INTERRUPT, &points);
                    next = follow.next().await;
                }
                Follow::End(status, error) => {
                    for block in blocks.finish() {
                        yield named(event::BLOCK, &ChatBlock { html: block.html, consumed: block.consumed });
                    }
                    // A streamed output has been sent piece by piece already.
                    let output = if first { task.view().output } else { None };
                    let plan = output_schema(&tasks, &run.workflow_id);
                    let schema = plan.as_ref().map_or(&[][..], |p| &p.output_schema);
                    let (first_chunk_ms, duration_ms) = task.timings();
                    yield named(event::END, &ChatEnd {
                        status,
                        error,
                        duration_ms,
                        usage: usage_text(task.usage.count().reported(), first_chunk_ms, duration_ms),
                        blocks: output.as_ref().map(|output| output_blocks(output, schema)).unwrap_or_default(),
                        output,
                    });
                }
            }
        }
    }
}

/// The conversation a chat's run is a turn of.
enum TurnOf {
    /// One the chat has: its id.
    Going(String),
    /// One to record, with this id.
    New(String),
}

impl TurnOf {
    fn id(&self) -> &str {
        match self {
            TurnOf::Going(id) | TurnOf::New(id) => id,
        }
    }
}

/// Records the run as an answer in its conversation (a new one, titled by the prompt, when
/// there is none yet); returns the conversation, the turn's position and the answer's version.
async fn in_conversation(
    tasks: &TaskRegistry,
    workflow_id: &str,
    conversation: TurnOf,
    position: Option<u32>,
    prompt: &str,
    task: &Task,
) -> Result<(String, u32, u32), String> {
    let store = tasks.store().ok_or("no history")?;
    let now = task.started_at();
    let id = match conversation {
        TurnOf::Going(id) => id,
        TurnOf::New(id) => {
            let summary = ConversationSummary {
                id,
                workflow_id: workflow_id.to_string(),
                title: title_of(prompt),
                created_at: now,
                updated_at: now,
            };
            store
                .create_conversation(&summary)
                .await
                .map_err(|e| e.to_string())?;
            summary.id
        }
    };
    let (position, version) = store
        .add_answer(&id, position, prompt, &task.id, now)
        .await
        .map_err(|e| e.to_string())?;
    Ok((id, position, version))
}

/// A public workflow's output schema (none for an unknown one).
fn output_schema(tasks: &TaskRegistry, workflow_id: &str) -> Option<Arc<WorkflowPlan>> {
    tasks
        .engine()
        .workflow(Some(workflow_id), Access::Public)
        .ok()
}

/// An output that was not streamed, as HTML blocks: media as players and images, text as
/// Markdown, anything else as JSON.
fn output_blocks(output: &Value, schema: &[Variable]) -> Vec<String> {
    if let Some(blocks) = media::blocks(output, schema) {
        return blocks;
    }
    let text = match output {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => format!(
            "```json\n{}\n```",
            serde_json::to_string_pretty(other).unwrap_or_default()
        ),
    };
    markdown::render_blocks(&text)
}

/// `12 + 34 tokens · 56 tokens/s`: what the upstream reported, and the completion's pace from
/// its first piece to its end (the whole run when it did not stream). Made here, so that the
/// browser only shows it.
fn usage_text(
    usage: Option<TokenUsage>,
    first_chunk_ms: Option<i64>,
    duration_ms: Option<i64>,
) -> Option<String> {
    let usage = usage?;
    let count = |n: Option<u64>| n.map_or_else(|| "?".to_string(), |n| n.to_string());
    let mut text = format!(
        "{} + {} tokens",
        count(usage.prompt_tokens),
        count(usage.completion_tokens)
    );
    let duration = duration_ms.unwrap_or_default();
    let streaming = match first_chunk_ms {
        Some(first) if first < duration => duration - first,
        _ => duration,
    };
    if let Some(rate) = usage.per_second(streaming) {
        text.push_str(&format!(" · {rate:.0} tokens/s"));
    }
    Some(text)
}

/// A stored conversation with its answers rendered.
pub fn rendered(tasks: &TaskRegistry, conversation: Conversation) -> ChatConversation {
    let plan = output_schema(tasks, &conversation.summary.workflow_id);
    let schema = plan.as_ref().map_or(&[][..], |p| &p.output_schema);
    ChatConversation {
        summary: conversation.summary,
        turns: conversation
            .turns
            .into_iter()
            .map(|turn| ChatTurn {
                position: turn.position,
                current: turn.current,
                versions: turn
                    .versions
                    .into_iter()
                    .map(|answer| ChatAnswer {
                        usage: usage_text(answer.usage, answer.first_chunk_ms, answer.duration_ms),
                        blocks: answer
                            .output
                            .as_ref()
                            .map(|output| output_blocks(&output.to_value(), schema))
                            .unwrap_or_default(),
                        answer,
                    })
                    .collect(),
            })
            .collect(),
    }
}

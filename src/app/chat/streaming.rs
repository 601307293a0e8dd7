//! An answer as it streams: the request, its events read as they come and applied at most
//! every [`REDRAW`], and how it ends.

use super::*;

/// The largest event the chat stream may carry (a rendered block).
const MAX_EVENT: usize = 16 * 1024 * 1024;

/// How often a streaming answer is redrawn: often enough to read as it comes, seldom enough
/// that painting stays a small part of the browser's time (tokens can come every millisecond).
const REDRAW: std::time::Duration = std::time::Duration::from_millis(50);

/// The events of a stream that came since the last redraw.
#[derive(Clone, Default)]
struct Pending(Rc<RefCell<Vec<compose::sse::Event>>>);

impl Pending {
    /// Keeps `event` for the next redraw; true when it is the first since the last one.
    fn push(&self, event: compose::sse::Event) -> bool {
        let mut events = self.0.borrow_mut();
        events.push(event);
        events.len() == 1
    }

    fn take(&self) -> Vec<compose::sse::Event> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}

impl Chat {
    /// Sends `prompt`: after the last turn, or as a new answer of the turn at `position`
    /// (the turns after it go: they followed from another answer).
    pub(super) fn send(self, prompt: String, position: Option<usize>) {
        if self.busy() {
            return;
        }
        let fields = self.fields.get_value();
        let input = fields.input(&prompt, self.context(position));
        let reply = self
            .owner
            .with_value(|owner| owner.with(|| Reply::new(prompt.clone(), fields.summary())));
        match position {
            Some(at) => self.turns.update(|turns| {
                turns.truncate(at + 1);
                if let Some(turn) = turns.get(at) {
                    turn.replies.update(|replies| replies.push(reply));
                    turn.shown.set(turn.replies.with_untracked(Vec::len) - 1);
                }
            }),
            None => {
                self.settings_open.set(false);
                let turn = TurnState {
                    key: self.key(),
                    replies: RwSignal::new(vec![reply]),
                    shown: RwSignal::new(0),
                };
                self.turns.update(|turns| turns.push(turn));
            }
        }
        self.running.set(Some(reply));
        self.follow.set(true);
        self.scroll_to_end();
        self.status.set("Answering…".into());
        log::push(self.log, LogKind::Info, "Run started");
        let workflow_id = self.workflow.with_value(|w| w.id.clone());
        let conversation = self.conversation.get_untracked();
        let position = position.map(|p| p as u32);
        spawn_local(async move {
            match chat(
                workflow_id,
                input.to_string(),
                prompt,
                conversation,
                position,
            )
            .await
            {
                Ok(events) => {
                    let mut body = std::pin::pin!(events.into_inner());
                    let mut decoder = compose::sse::Decoder::new(MAX_EVENT);
                    let pending = Pending::default();
                    'read: while let Some(chunk) = body.next().await {
                        let Ok(bytes) = chunk else { break };
                        for event in decoder.feed(&bytes) {
                            let Ok(event) = event else { break 'read };
                            if pending.push(event) {
                                let pending = pending.clone();
                                set_timeout(move || self.apply_all(reply, &pending), REDRAW);
                            }
                        }
                    }
                    self.apply_all(reply, &pending);
                }
                Err(err) => self.failed(reply, err.to_string(), None),
            }
            if reply.phase.get_untracked() == Phase::Streaming {
                self.unreachable.set(true);
                self.failed(reply, "The connection to the server was lost.".into(), None);
            }
            self.running.set(None);
            self.sidebar_version.update(|v| *v += 1);
        });
    }

    /// Shows the events that came since the last redraw.
    fn apply_all(self, reply: Reply, pending: &Pending) {
        let events = pending.take();
        if events.is_empty() {
            return;
        }
        for event in events {
            self.apply(reply, event);
        }
        self.scroll_to_end();
    }

    fn apply(self, reply: Reply, event: compose::sse::Event) {
        fn data<T: DeserializeOwned>(event: &compose::sse::Event) -> Option<T> {
            serde_json::from_str(&event.data).ok()
        }
        self.unreachable.set(false);
        match event.name.as_deref() {
            Some(event::START) => {
                let Some(start) = data::<ChatStart>(&event) else {
                    return;
                };
                reply.task_id.set(Some(start.task_id));
                reply.version.set(start.version);
                if self.conversation.get_untracked().is_none() {
                    if let Some(id) = start.conversation_id {
                        let first = self.turns.with_untracked(|turns| {
                            turns
                                .first()
                                .and_then(TurnState::reply)
                                .map(|r| r.prompt.get_value())
                        });
                        self.title.set(first.as_deref().map(title_of));
                        self.conversation.set(Some(id.clone()));
                        self.sidebar_version.update(|v| *v += 1);
                        self.show_address.run(id);
                    }
                }
            }
            Some(event::FIRST_TOKEN) => {
                if let Some(first) = data::<ChatFirstToken>(&event) {
                    log::push(
                        self.log,
                        LogKind::Info,
                        format!("First token after {} ms", first.after_ms),
                    );
                }
            }
            Some(event::PIECE) => {
                let Some(piece) = data::<String>(&event) else {
                    return;
                };
                reply.open.update(|open| open.push_str(&piece));
                reply.text.update(|text| text.push_str(&piece));
            }
            Some(event::BLOCK) => {
                let Some(block) = data::<ChatBlock>(&event) else {
                    return;
                };
                reply.blocks.update(|blocks| blocks.push(block.html));
                reply.open.update(|open| {
                    let mut at = block.consumed.min(open.len());
                    while !open.is_char_boundary(at) {
                        at -= 1;
                    }
                    open.drain(..at);
                });
            }
            Some(event::INTERRUPT) => {
                let Some(points) = data::<Vec<compose::record::Point>>(&event) else {
                    return;
                };
                if points.is_empty() {
                    self.status.set("Answering…".into());
                    log::push(self.log, LogKind::Info, "Run resumed");
                } else {
                    self.status.set("Waiting for your answer…".into());
                    let jobs: Vec<&str> = points.iter().map(|p| p.job_id.as_str()).collect();
                    let text = format!("Waiting for an answer: job {}", jobs.join(", job "));
                    log::push(self.log, LogKind::Info, text);
                }
                reply.interrupt.set(points);
            }
            Some(event::STEP) => {
                if let Some(step) = data::<compose::record::JobEvent>(&event) {
                    reply.steps.update(|steps| steps.push(step));
                }
            }
            Some(event::END) => {
                let Some(end) = data::<ChatEnd>(&event) else {
                    return;
                };
                reply.interrupt.set(Vec::new());
                if !end.blocks.is_empty() {
                    reply.blocks.update(|blocks| blocks.extend(end.blocks));
                }
                // A text answer given whole (not streamed) is what Copy takes too.
                if let Some(serde_json::Value::String(text)) = &end.output {
                    if reply.text.with_untracked(String::is_empty) {
                        reply.text.set(text.clone());
                    }
                }
                reply.open.set(String::new());
                reply.usage.set(end.usage);
                let took = end
                    .duration_ms
                    .map(|ms| format!(" in {ms} ms"))
                    .unwrap_or_default();
                match Phase::of(end.status) {
                    Phase::Completed => {
                        reply.phase.set(Phase::Completed);
                        self.status.set("Answer complete.".into());
                        log::push(self.log, LogKind::Success, format!("Completed{took}"));
                    }
                    Phase::Stopped => {
                        reply.phase.set(Phase::Stopped);
                        self.status.set("Stopped.".into());
                        let after = took.replace(" in ", " after ");
                        log::push(self.log, LogKind::Info, format!("Stopped{after}"));
                    }
                    _ => {
                        let (error, hint) = match end.error {
                            Some(failure) => {
                                let hint = failure.hint();
                                (failure.message, hint)
                            }
                            None => ("the run failed".into(), None),
                        };
                        self.failed(reply, error, hint);
                    }
                }
            }
            _ => {}
        }
    }

    fn failed(self, reply: Reply, error: String, hint: Option<String>) {
        let shown = unreachable_text(&error);
        if shown != error {
            self.unreachable.set(true);
        }
        let hint = hint.or_else(|| (shown != error).then_some(shown));
        self.status.set(format!(
            "Failed: {}",
            hint.clone().unwrap_or_else(|| error.clone())
        ));
        log::push(self.log, LogKind::Failure, format!("Failed: {error}"));
        reply.error.set(Some((error, hint)));
        reply.phase.set(Phase::Failed);
    }
}

//! One answer: its rendered blocks and open text, its error and what to do about it, its
//! versions, and Copy and Regenerate.

use super::interrupt::InterruptCard;
use super::*;
use crate::app::agent_steps::LiveSteps;

#[component]
pub(super) fn AnswerView(
    reply: Reply,
    turn: TurnState,
    choose: impl Fn(usize) + Copy + Send + Sync + 'static,
    regenerate: impl Fn() + Copy + Send + Sync + 'static,
    chat: Chat,
) -> impl IntoView {
    let copied = RwSignal::new(false);
    let copy = move |_| {
        crate::app::rendered::copy_to_clipboard(reply.text.get_untracked());
        copied.set(true);
        set_timeout(
            move || copied.set(false),
            std::time::Duration::from_millis(1500),
        );
    };
    let versions = move || turn.replies.with(Vec::len);
    view! {
        <article class="message assistant" data-state=move || reply.phase.get().name() on:click=crate::app::rendered::on_click>
            <LiveSteps steps=reply.steps going=Signal::derive(move || reply.phase.get() == Phase::Streaming) text=reply.text/>
            <div class="markdown">
                <For each=move || reply.blocks.get().into_iter().enumerate() key=|(i, _)| *i let:block>
                    <div class="block" inner_html=block.1></div>
                </For>
                <Show when=move || !reply.open.with(String::is_empty)>
                    // An open code block is shown as code already, before it is highlighted.
                    <div class="open-block" class:open-code=move || reply.open.with(|text| opens_code(text))>
                        {move || reply.open.get()}
                    </div>
                </Show>
            </div>
            <Show when=move || reply.phase.get() == Phase::Streaming && reply.interrupt.with(Vec::is_empty)>
                <span class="typing" aria-hidden="true">"●"</span>
            </Show>
            <For each=move || reply.interrupt.get() key=|point| point.id.clone() let:point>
                <InterruptCard point reply chat/>
            </For>
            {move || reply.error.get().map(|(error, hint)| {
                let detail = hint.is_some().then(|| error.clone());
                view! {
                    <div class="error" role="alert">
                        <p>{hint.unwrap_or(error)}</p>
                        {detail.map(|detail| view! {
                            <details class="error-detail"><summary>"Details"</summary><pre>{detail}</pre></details>
                        })}
                        <button type="button" disabled=move || chat.busy() on:click=move |_| regenerate()>"Retry"</button>
                    </div>
                }
            })}
            <Show when=move || reply.phase.get() == Phase::Stopped>
                <p class="message-meta">"Stopped."</p>
            </Show>
            <div class="message-tools">
                {move || reply.usage.get().map(|usage| view! {
                    <span class="message-meta usage" title="prompt + completion tokens, as the model server reported them">{usage}</span>
                })}
                <Show when=move || { versions() > 1 }>
                    <span class="versions">
                        <button type="button" class="icon" aria-label="Previous answer"
                            disabled=move || turn.shown.get() == 0 || chat.busy()
                            on:click=move |_| choose(turn.shown.get_untracked().saturating_sub(1))>"‹"</button>
                        <span class="version-count">{move || format!("{} / {}", turn.shown.get() + 1, versions())}</span>
                        <button type="button" class="icon" aria-label="Next answer"
                            disabled=move || turn.shown.get() + 1 >= versions() || chat.busy()
                            on:click=move |_| choose((turn.shown.get_untracked() + 1).min(versions() - 1))>"›"</button>
                    </span>
                </Show>
                {move || reply.task_id.get().map(|id| view! {
                    <a class="run-link" href=format!("/runs/{id}") target="_blank" rel="noopener"
                        title="How the run went: its jobs, their inputs and outputs">"Run view"</a>
                })}
                <button type="button" class="copy" on:click=copy disabled=move || reply.text.with(String::is_empty)>
                    {move || if copied.get() { "Copied" } else { "Copy" }}
                </button>
                <button type="button" class="regenerate" disabled=move || chat.busy() on:click=move |_| regenerate()>"Regenerate"</button>
            </div>
        </article>
    }
}

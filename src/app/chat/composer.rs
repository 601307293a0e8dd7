//! Where a prompt is written and sent (Enter), or the answer stopped (Esc).

use super::*;

/// The composer: grows with its text (to a limit), sends on Enter (Shift+Enter: a new line);
/// Send becomes Stop while an answer streams.
#[component]
pub(super) fn Composer(chat: Chat) -> impl IntoView {
    let prompt = RwSignal::new(String::new());
    let takes_prompt = chat.fields.with_value(Fields::takes_prompt);
    let send = move || {
        let text = prompt.get_untracked();
        if takes_prompt && text.trim().is_empty() {
            return;
        }
        chat.send(text, None);
        prompt.set(String::new());
    };
    view! {
        <form class="composer column" on:submit=move |ev| { ev.prevent_default(); if chat.busy() { chat.stop() } else { send() } }>
            <label for="input-prompt" class="visually-hidden">"Prompt"</label>
            <textarea
                id="input-prompt"
                rows="1"
                placeholder="Message… (Enter sends, Shift+Enter adds a line)"
                prop:value=move || prompt.get()
                on:input=move |ev| prompt.set(event_target_value(&ev))
                on:keydown=move |ev| {
                    if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                        ev.prevent_default();
                        if !chat.busy() {
                            send();
                        }
                    }
                }
            ></textarea>
            {move || if chat.busy() {
                view! { <button type="button" class="stop" on:click=move |_| chat.stop()>"Stop"</button> }.into_any()
            } else {
                view! { <button type="submit" class="primary">"Send"</button> }.into_any()
            }}
        </form>
    }
}

//! The number control (the temperature of the seed): a slider and an editable number kept in
//! step, from 0.0 to 2.0 in steps of 0.1.

use leptos::prelude::*;

/// Lowest, highest and step, as OpenAI-compatible APIs accept a temperature.
const MIN: f64 = 0.0;
const MAX: f64 = 2.0;
const STEP: f64 = 0.1;

/// A slider with its value shown in an editable number field; both write `value`.
/// Typed values are clamped to the range and rounded to the step; unparsable text is
/// replaced by the current value.
#[component]
pub fn TemperatureControl(
    /// Used for the element ids.
    name: String,
    /// The visible label.
    label: String,
    value: RwSignal<f64>,
) -> impl IntoView {
    let set_from = move |text: String| {
        let next = match text.trim().parse::<f64>() {
            // Dividing by the step's reciprocal keeps 1.3 exact (multiplying gives 1.3000000000000003).
            Ok(parsed) if parsed.is_finite() => {
                (parsed.clamp(MIN, MAX) / STEP).round() / STEP.recip()
            }
            _ => value.get_untracked(),
        };
        // Set even when unchanged, so both fields show the accepted value again.
        value.set(next);
    };
    let range_id = format!("input-{name}");
    view! {
        <div class="temperature">
            <label for=range_id.clone()>{label.clone()}</label>
            <input
                id=range_id
                type="range"
                min=MIN
                max=MAX
                step=STEP
                // The attribute is the server-rendered first paint; the property follows the signal.
                value=value.get_untracked().to_string()
                prop:value=move || value.get().to_string()
                on:input=move |ev| set_from(event_target_value(&ev))
            />
            <input
                class="temperature-value"
                type="number"
                aria-label=format!("{label} value")
                min=MIN
                max=MAX
                step=STEP
                value=format!("{:.1}", value.get_untracked())
                prop:value=move || format!("{:.1}", value.get())
                on:change=move |ev| set_from(event_target_value(&ev))
            />
        </div>
    }
}

//! The run view (`/runs/{id}`): where a run is and why it went that way. The workflow's jobs
//! as a graph (what each waits for, the routes a router may take, the one it took, branches
//! never run greyed), each job's status as it changes, its duration, and, on click, its
//! input, output or error, and the iterations of the jobs inside it. Refreshed while the run
//! goes on.

use std::time::Duration;

use leptos::prelude::*;

use super::agent_steps::AgentSteps;
use leptos_router::hooks::use_params_map;

use crate::server_fns::{get_run, GraphJob, RunView};
use compose::record::{JobEvent, JobStage};

/// How often a run that goes on is read again.
const REFRESH: Duration = Duration::from_millis(700);

/// A job's box in the graph, and the room between boxes.
const BOX: (f64, f64) = (168.0, 56.0);
const GAP: (f64, f64) = (64.0, 24.0);
const PAD: f64 = 16.0;

#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let tick = RwSignal::new(0u32);
    let run = Resource::new(move || (id(), tick.get()), |(id, _)| get_run(id));
    // While the run goes on, it is read again now and then.
    Effect::new(move |_| {
        if let Some(Ok(Some(view))) = run.get() {
            if !view.status.is_terminal() {
                set_timeout(move || tick.update(|t| *t += 1), REFRESH);
            }
        }
    });
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let selected = RwSignal::new(None::<String>);
    view! {
        <main class="run-page" data-hydrated=move || hydrated.get().then_some("true")>
            <p class="run-back"><a href="/">"← Chat"</a></p>
            <Transition fallback=|| view! { <p class="muted loading">"Loading the run…"</p> }>
                {move || run.get().map(|found| match found {
                    Ok(Some(view)) => view! { <RunBody view selected/> }.into_any(),
                    Ok(None) => view! { <p class="muted notice">"There is no run with this id (any more)."</p> }.into_any(),
                    Err(err) => view! { <p class="error notice">{err.to_string()}</p> }.into_any(),
                })}
            </Transition>
        </main>
    }
}

#[component]
fn RunBody(view: RunView, selected: RwSignal<Option<String>>) -> impl IntoView {
    let ended = view.status.is_terminal();
    let states: Vec<(GraphJob, JobState)> = view
        .jobs
        .iter()
        .map(|job| {
            let waiting = view.interrupt.iter().any(|p| p.job_id == job.id);
            (
                job.clone(),
                JobState::of(&view.events, &job.id, ended, waiting),
            )
        })
        .collect();
    let took = view
        .duration_ms
        .map(|ms| format!(" · {}", seconds(ms as f64 / 1000.0)));
    let waiting: Vec<String> = view.interrupt.iter().map(|p| p.job_id.clone()).collect();
    let events = StoredValue::new(view.events.clone());
    let jobs = StoredValue::new(states.clone());
    view! {
        <header class="run-header">
            <h1>{view.title.clone()}</h1>
            <p class="run-meta">
                <span class=format!("run-status {}", view.status.as_str())>{view.status.as_str()}</span>
                {took}
                " · run "<code>{view.task_id.clone()}</code>
                {view.trace_id.clone().map(|id| view! { " · trace "<code class="trace-id">{id}</code> })}
            </p>
            {view.error.clone().map(|error| view! { <p class="error" role="alert">{error}</p> })}
            {(!waiting.is_empty()).then(|| view! {
                <p class="run-waiting">"Waiting for a person at job "{waiting.join(", ")}" (answer it in the chat, or with POST /api/tasks/{id}/resume)."</p>
            })}
        </header>
        {if states.is_empty() {
            view! { <p class="muted">"This run's workflow is no longer in the configuration; its events:"</p> }.into_any()
        } else {
            view! { <Graph states selected events=view.events.clone()/> }.into_any()
        }}
        {move || selected.get().map(|id| {
            let state = jobs.with_value(|jobs| jobs.iter().find(|(job, _)| job.id == id).cloned());
            events.with_value(|events| view! { <JobDetail id state events=events.clone()/> })
        })}
    }
}

/// Where a job is, as its events say.
#[derive(Debug, Clone, PartialEq)]
struct JobState {
    /// `pending`, `running`, `waiting`, `completed`, `routed`, `failed` or `skipped`.
    status: &'static str,
    /// Seconds from its (last) start to its end, once ended.
    took: Option<f64>,
    input: Option<serde_json::Value>,
    output: Option<serde_json::Value>,
    routed_to: Option<String>,
}

impl JobState {
    fn of(events: &[JobEvent], id: &str, ended: bool, waiting: bool) -> Self {
        // An agent's messages are its steps, not where it is.
        let own = || {
            events
                .iter()
                .filter(|e| e.job_id == id && e.iteration.is_none() && e.event != JobStage::Message)
        };
        let started = own().rfind(|e| e.event == JobStage::Started);
        let last = own().next_back();
        let status = match last.map(|e| e.event) {
            Some(JobStage::Started) if waiting => "waiting",
            Some(JobStage::Started) if ended => "failed",
            Some(JobStage::Started) => "running",
            Some(JobStage::Completed) => "completed",
            Some(JobStage::Routed) => "routed",
            Some(JobStage::Failed) => "failed",
            Some(JobStage::Message) | None if ended => "skipped",
            Some(JobStage::Message) | None => "pending",
        };
        let end = last.filter(|e| e.event != JobStage::Started);
        Self {
            status,
            took: started
                .zip(end)
                .map(|(s, e)| (e.elapsed - s.elapsed).max(0.0)),
            input: started.and_then(|e| e.value.clone()),
            output: end.and_then(|e| e.value.clone()),
            routed_to: end.and_then(|e| e.next_job_id.clone()),
        }
    }
}

/// `0.42 s`, `3.1 s`, `12 s`.
fn seconds(s: f64) -> String {
    match s {
        s if s < 1.0 => format!("{s:.2} s"),
        s if s < 10.0 => format!("{s:.1} s"),
        s => format!("{s:.0} s"),
    }
}

fn place(job: &GraphJob) -> (f64, f64) {
    (
        PAD + f64::from(job.column) * (BOX.0 + GAP.0),
        PAD + f64::from(job.row) * (BOX.1 + GAP.1),
    )
}

#[component]
fn Graph(
    states: Vec<(GraphJob, JobState)>,
    selected: RwSignal<Option<String>>,
    events: Vec<JobEvent>,
) -> impl IntoView {
    let columns = states.iter().map(|(j, _)| j.column).max().unwrap_or(0) + 1;
    let rows = states.iter().map(|(j, _)| j.row).max().unwrap_or(0) + 1;
    let width = 2.0 * PAD + f64::from(columns) * (BOX.0 + GAP.0) - GAP.0;
    let height = 2.0 * PAD + f64::from(rows) * (BOX.1 + GAP.1) - GAP.1;
    let at = |id: &str| {
        states
            .iter()
            .find(|(j, _)| j.id == id)
            .map(|(j, _)| place(j))
    };
    let mut edges = Vec::new();
    for (job, _) in &states {
        let to = place(job);
        for dep in &job.depends_on {
            if let Some(from) = at(dep) {
                edges.push((from, to, "edge".to_string()));
            }
        }
        for target in &job.routes {
            if let Some(target_at) = at(target) {
                let taken = events.iter().any(|e| {
                    e.job_id == job.id && e.next_job_id.as_deref() == Some(target.as_str())
                });
                let class = if taken {
                    "edge route taken"
                } else {
                    "edge route"
                };
                edges.push((to, target_at, class.to_string()));
            }
        }
    }
    let paths = edges
        .into_iter()
        .map(|((x1, y1), (x2, y2), class)| {
            let (x1, y1) = (x1 + BOX.0, y1 + BOX.1 / 2.0);
            let (x2, y2) = (x2, y2 + BOX.1 / 2.0);
            let d = format!(
                "M{x1},{y1} C{},{y1} {},{y2} {x2},{y2}",
                x1 + GAP.0 / 2.0,
                x2 - GAP.0 / 2.0
            );
            view! { <path class=class d=d marker-end="url(#arrow)"></path> }
        })
        .collect_view();
    let nodes = states
        .into_iter()
        .map(|(job, state)| {
            let (x, y) = place(&job);
            let id = job.id.clone();
            let label = format!("Job {}: {}", job.id, state.status);
            let meta = match state.took {
                Some(took) => format!("{} · {}", job.kind, seconds(took)),
                None => format!("{} · {}", job.kind, state.status),
            };
            let is_selected = {
                let id = id.clone();
                move || selected.get().as_deref() == Some(id.as_str())
            };
            let choose = {
                let id = id.clone();
                move || selected.set(Some(id.clone()))
            };
            let choose_key = choose.clone();
            view! {
                <g class=format!("job {}", state.status) class:selected=is_selected
                    data-job=id.clone() role="button" tabindex="0" aria-label=label
                    on:click=move |_| choose()
                    on:keydown=move |ev| if ev.key() == "Enter" || ev.key() == " " { choose_key() }>
                    <rect x=x y=y width=BOX.0 height=BOX.1 rx="8"></rect>
                    <text class="job-id" x=x + 12.0 y=y + 23.0>{job.id.clone()}</text>
                    <text class="job-meta" x=x + 12.0 y=y + 42.0>{meta}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <div class="run-graph">
            <svg width=width height=height viewBox=format!("0 0 {width} {height}") role="img" aria-label="The workflow's jobs">
                <defs>
                    <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                        <path d="M0,0 L10,5 L0,10 z"></path>
                    </marker>
                </defs>
                {paths}
                {nodes}
            </svg>
        </div>
    }
}

#[component]
fn JobDetail(
    id: String,
    state: Option<(GraphJob, JobState)>,
    events: Vec<JobEvent>,
) -> impl IntoView {
    let (kind, state) = match state {
        Some((job, state)) => (job.kind, state),
        None => (String::new(), JobState::of(&events, &id, true, false)),
    };
    let pretty = |value: &serde_json::Value| match value {
        serde_json::Value::String(text) => text.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    };
    let output_label = if state.status == "failed" {
        "Error"
    } else {
        "Output"
    };
    let output = state.output.as_ref().map(pretty);
    let iterations = iterations(&events, &id);
    let steps = view! { <AgentSteps id=id.clone() events=events.clone()/> };
    view! {
        <section class="job-detail" aria-label=format!("Job {id}")>
            <h2>{id.clone()}" "<span class="muted">{kind}" · "{state.status}{state.took.map(|t| format!(" · {}", seconds(t)))}</span></h2>
            {state.routed_to.clone().map(|to| view! { <p>"Routed to "<code>{to}</code></p> })}
            {state.input.as_ref().map(|input| view! {
                <h3>"Input"</h3><pre class="job-input">{pretty(input)}</pre>
            })}
            {output.map(|output| view! {
                <h3>{output_label}</h3><pre class="job-output">{output}</pre>
            })}
            {steps}
            {(!iterations.is_empty()).then(|| view! {
                <h3>"Iterations"</h3>
                <table class="iterations">
                    <thead><tr><th>"#"</th><th>"status"</th><th>"took"</th><th>"input"</th><th>"output"</th></tr></thead>
                    <tbody>
                        {iterations.into_iter().map(|row| view! {
                            <tr class=row.status>
                                <td>{row.index}</td><td>{row.status}</td>
                                <td>{row.took.map(seconds)}</td>
                                <td><code>{row.input}</code></td><td><code>{row.output}</code></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
        </section>
    }
}

/// One iteration of the jobs inside a job.
struct Iteration {
    index: u32,
    status: &'static str,
    took: Option<f64>,
    input: String,
    output: String,
}

/// The iterations of the jobs inside job `id` (theirs are named `id[...]`), in order; a
/// pipeline's steps each count as one.
fn iterations(events: &[JobEvent], id: &str) -> Vec<Iteration> {
    let prefix = format!("{id}[");
    let inner: Vec<&JobEvent> = events
        .iter()
        .filter(|e| e.job_id.starts_with(&prefix) && e.iteration.is_some())
        .collect();
    let mut indexes: Vec<u32> = inner.iter().filter_map(|e| e.iteration).collect();
    indexes.sort_unstable();
    indexes.dedup();
    let compact = |value: Option<&serde_json::Value>| {
        let text = value.map(|v| v.to_string()).unwrap_or_default();
        match text.char_indices().nth(120) {
            Some((at, _)) => format!("{}…", &text[..at]),
            None => text,
        }
    };
    indexes
        .into_iter()
        .map(|index| {
            let of = || inner.iter().filter(move |e| e.iteration == Some(index));
            let started = of().find(|e| e.event == JobStage::Started);
            let end = of().rfind(|e| e.event != JobStage::Started);
            Iteration {
                index,
                status: match end.map(|e| e.event) {
                    Some(JobStage::Failed) => "failed",
                    Some(_) => "completed",
                    None => "running",
                },
                took: started
                    .zip(end)
                    .map(|(s, e)| (e.elapsed - s.elapsed).max(0.0)),
                input: compact(started.and_then(|e| e.value.as_ref())),
                output: compact(end.and_then(|e| e.value.as_ref())),
            }
        })
        .collect()
}

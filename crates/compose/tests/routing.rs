//! Routing (spec §13.2–§13.5), the engine as a library: one row per rule, each a workflow, an
//! input and what the run gives (or its error's message). Branches are `delay` jobs whose
//! `output` names them, so no upstream is needed except where a job must fail and succeed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::json;
use support::{check_cases, load, refused, run, Case};
use testkit::mock_upstream::{Behavior, MockUpstream};
use testkit::Workdir;

/// A workflow `wf` of `jobs` (YAML list items, indented four spaces), with an `output` if
/// given.
fn workflow(jobs: &str, output: Option<&str>) -> String {
    let output = output.map_or(String::new(), |o| format!("  output: {o}\n"));
    format!("workflow:\n  id: wf\n{output}  jobs:\n{jobs}")
}

/// A `delay` job that gives `{<key>: <id>}` at once.
fn branch(id: &str, extra: &str) -> String {
    format!("    - id: {id}\n      type: delay\n      output: {{took: {id}}}\n{extra}")
}

const GRADES: &str = r#"    - id: grade
      type: if
      input: ${input.score}
      conditions:
        - {operator: gte, value: 90, if_true: a}
        - {operator: gte, value: 70, if_true: b}
      otherwise: f
"#;

const LANGUAGES: &str = r#"    - id: language
      type: switch
      input: ${input.lang}
      cases:
        - {value: ko, then: ko}
        - {value: '1', then: one}
      otherwise: other
"#;

fn cases() -> Vec<Case> {
    let grades = || {
        format!(
            "{GRADES}{}{}{}",
            branch("a", ""),
            branch("b", ""),
            branch("f", "")
        )
    };
    let languages = || {
        let branches: String = ["ko", "one", "other"].map(|id| branch(id, "")).concat();
        format!("{LANGUAGES}{branches}")
    };
    let sticky = |mode: &str, weights: [&str; 2]| {
        let jobs = format!(
            "    - id: pick\n      type: random-router\n      mode: {mode}\n      session: ${{input.user}}\n      routings:\n        - {{to: x, weight: {}}}\n        - {{to: y, weight: {}}}\n{}{}",
            weights[0], weights[1], branch("x", ""), branch("y", "")
        );
        workflow(&jobs, None)
    };
    let case = |rule, yaml: String, input, gives| Case {
        rule,
        yaml,
        input,
        gives,
    };
    vec![
        case("if: the first condition that holds routes", workflow(&grades(), None), json!({"score": 95}), Ok(json!({"took": "a"}))),
        case("if: conditions are tried in order", workflow(&grades(), None), json!({"score": 75}), Ok(json!({"took": "b"}))),
        case("if: none holds, otherwise", workflow(&grades(), None), json!({"score": 10}), Ok(json!({"took": "f"}))),
        case(
            "if: one condition's keys on the job; if_false routes when it fails",
            workflow(&format!("    - id: check\n      type: if\n      input: ${{input.n}}\n      operator: lt\n      value: 3\n      if_true: small\n      if_false: big\n{}{}", branch("small", ""), branch("big", "")), None),
            json!({"n": 5}),
            Ok(json!({"took": "big"})),
        ),
        case(
            "if: nothing matched and no otherwise: the router's output is null (not OD20's 500)",
            workflow(&format!("    - id: check\n      type: if\n      input: ${{input.n}}\n      value: 1\n      if_true: one\n{}", branch("one", "")), Some("{check: '${jobs.check.output}', one: '${jobs.one.output}'}")),
            json!({"n": 2}),
            Ok(json!({"check": null, "one": null})),
        ),
        case(
            "if: ordering a number and a text fails the job",
            workflow(&grades(), None),
            json!({"score": "high"}),
            Err("cannot order a string and an integer"),
        ),
        case("switch: a text case", workflow(&languages(), None), json!({"lang": "ko"}), Ok(json!({"took": "ko"}))),
        case("switch: case values are texts", workflow(&languages(), None), json!({"lang": "1"}), Ok(json!({"took": "one"}))),
        case("switch: an integer is not the text '1'", workflow(&languages(), None), json!({"lang": 1}), Ok(json!({"took": "other"}))),
        case(
            "random-router: a session always takes the same route (the original's hash)",
            sticky("uniform", ["1", "1"]),
            json!({"user": "u2"}),
            Ok(json!({"took": "x"})),
        ),
        case(
            "random-router: weighted, a route of weight 0 is never taken",
            sticky("weighted", ["0", "2"]),
            json!({"user": ""}),
            Ok(json!({"took": "y"})),
        ),
        case(
            "random-router: weighted, no route of weight above 0",
            sticky("weighted", ["0", "0"]),
            json!({"user": "u1"}),
            Err("No valid routing found in random-router job 'pick'"),
        ),
        case(
            "routing targets run only when routed to; their depends_on is not waited for",
            workflow(&format!("    - id: go\n      type: if\n      otherwise: target\n{}{}", branch("target", "      depends_on: [never]\n"), branch("never", "      depends_on: [go]\n")), Some("{target: '${jobs.target.output}', never: '${jobs.never.output}'}")),
            json!({}),
            Ok(json!({"target": {"took": "target"}, "never": {"took": "never"}})),
        ),
        case(
            "a plain depends_on on a skipped branch never runs",
            workflow(&format!("{GRADES}{}{}{}{}", branch("a", ""), branch("b", ""), branch("f", ""), branch("join", "      depends_on: [a]\n")), None),
            json!({"score": 10}),
            Err("No runnable jobs but pending jobs remain."),
        ),
        case(
            "an any-of depends_on joins the branches",
            workflow(&format!("{GRADES}{}{}{}{}", branch("a", ""), branch("b", ""), branch("f", ""), branch("join", "      depends_on: [[a, b, f]]\n")), Some("{f: '${jobs.f.output.took}', a: '${jobs.a.output}', join: '${jobs.join.output.took}'}")),
            json!({"score": 10}),
            Ok(json!({"f": "f", "a": null, "join": "join"})),
        ),
        case(
            "on_error.to routes a failed job's run to another job",
            workflow(&format!("    - id: bad\n      type: delay\n      duration: soon\n      on_error: {{to: recover}}\n{}", branch("recover", "")), Some("{bad: '${jobs.bad.output}', recover: '${jobs.recover.output.took}'}")),
            json!({}),
            Ok(json!({"bad": null, "recover": "recover"})),
        ),
        case(
            "two routers sending the run to each other run until a max_run_count",
            workflow("    - id: ping\n      type: if\n      max_run_count: 3\n      otherwise: pong\n    - id: pong\n      type: if\n      otherwise: ping\n    - id: start\n      type: if\n      otherwise: ping\n", None),
            json!({}),
            Err("Job 'ping' has reached its max_run_count (3)."),
        ),
    ]
}

#[tokio::test]
async fn every_routing_rule_gives_what_the_spec_says() {
    check_cases(&Workdir::empty(), cases()).await;
}

#[tokio::test]
async fn a_sticky_choice_holds_for_each_session_and_sessions_spread() {
    let dir = Workdir::empty();
    let sticky = cases()
        .into_iter()
        .find(|case| case.rule.starts_with("random-router: a session"))
        .unwrap();
    let engine = load(&dir, &sticky.yaml).unwrap();
    let mut taken = std::collections::HashSet::new();
    for user in ["u1", "u2", "u3", "u4", "u5", "u6"] {
        let first = run(&engine, json!({"user": user})).await.unwrap();
        for _ in 0..3 {
            assert_eq!(run(&engine, json!({"user": user})).await.unwrap(), first);
        }
        taken.insert(first.to_string());
    }
    assert_eq!(taken.len(), 2, "six sessions all took one route");
    // Without a session the choice is random: both routes come up.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..64 {
        seen.insert(run(&engine, json!({"user": ""})).await.unwrap().to_string());
    }
    assert_eq!(seen.len(), 2);
}

/// `kick` routes to `ask` (an upstream call that fails twice before it answers); `check`
/// sends the run back to `ask` until it answered: a rewind runs `ask` and `check` again.
const RETRY_BY_ROUTING: &str = r#"
component:
  type: http-client
  base_url: BASE
  action:
    path: /chat/completions
    body: {}
    output: ${response.text}
workflow:
  output: {answer: '${jobs.done.output}'}
  jobs:
    - id: kick
      type: if
      otherwise: ask
    - id: ask
      max_run_count: RUNS
      on_error: {output: failed}
    - id: check
      type: if
      depends_on: [ask]
      input: ${jobs.ask.output}
      value: ok
      if_true: done
      if_false: ask
    - id: done
      type: delay
      output: ${jobs.ask.output}
"#;

#[tokio::test]
async fn routing_back_to_a_done_job_runs_it_and_its_dependants_again() {
    let dir = Workdir::empty();
    let failing_twice = || {
        MockUpstream::start(
            Behavior::body("application/json", r#"{"text": "ok"}"#).failing_first(2, 500, "{}"),
        )
    };
    let mock = failing_twice();
    let yaml = RETRY_BY_ROUTING
        .replace("BASE", &mock.base_url)
        .replace("RUNS", "25");
    let engine = load(&dir, &yaml).unwrap();
    assert_eq!(run(&engine, json!({})).await, Ok(json!({"answer": "ok"})));
    assert_eq!(mock.requests().len(), 3);

    let mock = failing_twice();
    let yaml = RETRY_BY_ROUTING
        .replace("BASE", &mock.base_url)
        .replace("RUNS", "2");
    let engine = load(&dir, &yaml).unwrap();
    assert_eq!(
        run(&engine, json!({})).await,
        Err("Job 'ask' has reached its max_run_count (2).".into())
    );
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn routers_written_wrong_are_refused_at_load_with_their_place() {
    let dir = Workdir::empty();
    let refused = |jobs: &str| refused(&dir, &workflow(jobs, None));
    let err = refused("    - id: go\n      type: if\n      otherwise: nowhere\n");
    assert!(
        err.contains(":6:7:") && err.contains("job 'go' routes to unknown job 'nowhere'"),
        "{err}"
    );
    let err = refused(
        "    - id: go\n      type: if\n      conditions:\n        - {operator: about, value: 1, if_true: go}\n",
    );
    assert!(
        err.contains(":7:12:") && err.contains("unknown operator 'about'"),
        "{err}"
    );
    let err =
        refused("    - id: go\n      type: switch\n      cases:\n        - {value: 1, then: go}\n");
    assert!(
        err.contains(":7:12:") && err.contains("a case's value is a text"),
        "{err}"
    );
    let err = refused("    - id: go\n      type: random-router\n      mode: sticky\n");
    assert!(
        err.contains(":6:13:") && err.contains("unknown variant `sticky`"),
        "{err}"
    );
    let err = refused("    - id: go\n      type: random-router\n");
    assert!(
        err.contains(":4:") && err.contains("needs 'routings'"),
        "{err}"
    );
    let err = refused("    - id: go\n      type: delay\n      mode: weighted\n");
    assert!(
        err.contains(":6:7:") && err.contains("a delay's mode"),
        "{err}"
    );
}

mod never_hangs {
    //! Any graph of `component`, `if` and `for-each` jobs, with any dependencies and routes
    //! (backwards ones too: rewinds), completes or fails with a message: never hangs.
    use super::*;
    use proptest::prelude::*;

    /// One job of a generated graph: its kind, what it depends on and where it routes.
    #[derive(Debug, Clone)]
    struct Node {
        kind: u8,
        depends_on: Vec<usize>,
        any_of: bool,
        routes: (usize, usize),
        limit: u8,
    }

    fn node(count: usize) -> impl Strategy<Value = Node> {
        (
            0u8..3,
            prop::collection::vec(0..count, 0..3),
            any::<bool>(),
            (0..count, 0..count),
            1u8..4,
        )
            .prop_map(|(kind, depends_on, any_of, routes, limit)| Node {
                kind,
                depends_on,
                any_of,
                routes,
                limit,
            })
    }

    fn graph() -> impl Strategy<Value = Vec<Node>> {
        (2usize..7).prop_flat_map(|count| prop::collection::vec(node(count), count))
    }

    /// The graph as a config: jobs `j0`, `j1`, … calling a trivial workflow (no upstream).
    fn yaml(nodes: &[Node]) -> String {
        let mut jobs = String::new();
        for (i, node) in nodes.iter().enumerate() {
            let deps: Vec<String> = node
                .depends_on
                .iter()
                .filter(|d| **d != i)
                .map(|d| format!("j{d}"))
                .collect();
            let deps = match (deps.is_empty(), node.any_of) {
                (true, _) => String::new(),
                (false, true) => format!("      depends_on: [[{}]]\n", deps.join(", ")),
                (false, false) => format!("      depends_on: [{}]\n", deps.join(", ")),
            };
            let work = match node.kind {
                0 => "      component: leaf\n".to_string(),
                1 => format!(
                    "      type: if\n      input: ${{input.n}}\n      operator: gt\n      value: 1\n      if_true: j{}\n      otherwise: j{}\n",
                    node.routes.0, node.routes.1
                ),
                _ => "      type: for-each\n      input: [1, 2]\n      do: {component: leaf}\n"
                    .to_string(),
            };
            jobs.push_str(&format!(
                "    - id: j{i}\n      max_run_count: {}\n{work}{deps}",
                node.limit
            ));
        }
        format!(
            "components:\n  - id: leaf\n    type: workflow\n    action: {{workflow: leaf}}\n\
             workflows:\n  - id: main\n    default: true\n    jobs:\n{jobs}  - id: leaf\n    private: true\n    job: {{id: give, type: delay, output: leaf}}\n"
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn a_graph_of_jobs_ends(nodes in graph(), n in 0i64..3) {
            let dir = Workdir::empty();
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            // A cycle of depends_on is refused at load: that is an end too.
            if let Ok(engine) = load(&dir, &yaml(&nodes)) {
                let ended = runtime.block_on(async {
                    tokio::time::timeout(
                        std::time::Duration::from_secs(20),
                        run(&engine, json!({"n": n})),
                    )
                    .await
                });
                match ended {
                    Err(_) => panic!("the run hung:\n{}", yaml(&nodes)),
                    Ok(Err(message)) => prop_assert!(!message.is_empty()),
                    Ok(Ok(_)) => {}
                }
            }
        }
    }
}

//! The `shell` and `workflow` components (spec §11–§12, D27), the engine as a library: argv
//! never read by a shell, the config's environment only, caps, a timeout or a cancel that kills
//! the whole process group, and workflows that run workflows inside the same run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use compose::workflow::Access;
use serde_json::json;
use support::{load, load_with, refused, run};
use testkit::Workdir;

/// A shell component with one action (`action` YAML, indented four spaces) and one job.
fn shell(action: &str) -> String {
    format!("component:\n  type: shell\n  env: {{GREETING: hello}}\n  action:\n{action}workflow:\n  job:\n    id: call\n")
}

#[tokio::test]
async fn a_command_runs_as_an_argv_and_gives_its_output_and_exit_code() {
    let dir = Workdir::empty();
    let engine = load(
        &dir,
        &shell("    command: [sh, -c, \"echo '  out  '; echo err >&2; exit 3\"]\n"),
    )
    .unwrap();
    assert_eq!(
        run(&engine, json!({})).await,
        Ok(json!({"stdout": "out", "stderr": "err", "exit_code": 3})),
        "a non-zero exit is not an error; output is trimmed"
    );

    // A value is one argument, whatever it holds: no shell reads it.
    let engine = load(
        &dir,
        &shell("    command: [printf, '[%s]', '${input.a}']\n    output: ${result.stdout}\n"),
    )
    .unwrap();
    let hostile = r#"it's a; $(id) "q" `x` *"#;
    assert_eq!(
        run(&engine, json!({"a": hostile})).await,
        Ok(json!(format!("[{hostile}]")))
    );
    // A number is its text; a list cannot be one argument.
    assert_eq!(run(&engine, json!({"a": 42})).await, Ok(json!("[42]")));
    let err = run(&engine, json!({"a": [1, 2]})).await.unwrap_err();
    assert!(err.contains("command[2] renders to a list"), "{err}");

    // A batch: each argv, results in order, two at a time.
    let engine = load(
        &dir,
        &shell("    command: [[echo, a], [echo, b], [echo, c]]\n    batch_size: 2\n    output: ${result}\n"),
    )
    .unwrap();
    let results = run(&engine, json!({})).await.unwrap();
    let outs: Vec<&str> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["stdout"].as_str().unwrap())
        .collect();
    assert_eq!(outs, ["a", "b", "c"]);

    // stdin, a working directory (relative to the config's), and a program that is not there.
    std::fs::create_dir(dir.join("sub")).unwrap();
    let engine = load(
        &dir,
        &shell("    command: [sh, -c, 'cat; pwd']\n    stdin: '${input.text}'\n    working_dir: sub\n    output: ${result.stdout}\n"),
    )
    .unwrap();
    let printed = run(&engine, json!({"text": "typed\n"})).await.unwrap();
    let printed = printed.as_str().unwrap();
    assert!(
        printed.starts_with("typed\n") && printed.ends_with("/sub"),
        "{printed}"
    );
    let engine = load(&dir, &shell("    command: [no-such-program-here]\n")).unwrap();
    assert_eq!(
        run(&engine, json!({})).await,
        Err("command `no-such-program-here`: no such program (is it on the PATH?)".into())
    );
}

#[tokio::test]
async fn a_command_gets_the_configs_environment_and_nothing_else_of_the_servers() {
    let dir = Workdir::empty();
    let action = "    command: [env]\n    env: {TOKEN: '${env.MY_TOKEN}', FROM_INPUT: '${input.x}'}\n    output: ${result.stdout}\n";
    let engine = load_with(&dir, &shell(action), &[("MY_TOKEN", "t0k3n")]).unwrap();
    let printed = run(&engine, json!({"x": "y"})).await.unwrap();
    let mut names: Vec<&str> = printed
        .as_str()
        .unwrap()
        .lines()
        .map(|line| line.split('=').next().unwrap())
        .collect();
    names.sort_unstable();
    // This test's own process has many more (CARGO_*, RUST_*): none of them leak.
    let expected: Vec<&str> = ["FROM_INPUT", "GREETING", "HOME", "LANG", "PATH", "TOKEN"]
        .into_iter()
        .filter(|name| !["HOME", "LANG", "PATH"].contains(name) || std::env::var_os(name).is_some())
        .collect();
    assert_eq!(names, expected);
    assert!(printed
        .as_str()
        .unwrap()
        .lines()
        .any(|l| l == "TOKEN=t0k3n"));
}

/// The process id a command wrote to `file` in `dir`, once it is there.
fn written_pid(dir: &Workdir, file: &str) -> i32 {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(dir.join(file)) {
            if let Ok(pid) = text.trim().parse() {
                return pid;
            }
        }
        assert!(Instant::now() < until, "{file} never written");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process is gone (or a zombie nobody has reaped yet: it runs no more).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn assert_gone_soon(pid: i32) {
    let until = Instant::now() + Duration::from_secs(10);
    while !gone(pid) {
        assert!(Instant::now() < until, "process {pid} still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A command whose child forks a grandchild that would outlive it.
const FORKING: &str = "    command: [sh, -c, 'sleep 60 & echo $! > grandchild; wait']\n";

#[tokio::test]
async fn a_timeout_kills_the_commands_whole_process_group() {
    let dir = Workdir::empty();
    let engine = load(&dir, &shell(&format!("{FORKING}    timeout: 500ms\n"))).unwrap();
    let started = Instant::now();
    let err = run(&engine, json!({})).await.unwrap_err();
    assert!(err.ends_with("timed out after 0.5 s"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_gone_soon(written_pid(&dir, "grandchild"));
}

#[tokio::test]
async fn a_cancelled_run_kills_the_commands_whole_process_group() {
    let dir = Workdir::empty();
    let engine = load(&dir, &shell(FORKING)).unwrap();
    let request = engine.request(None, json!({}), Access::All).unwrap();
    let mut run = Box::pin(engine.run(&request, json!({})));
    // Running until the grandchild is there, then dropped: the run is cancelled.
    let pid = tokio::select! {
        _ = &mut run => panic!("the command ended by itself"),
        pid = tokio::task::spawn_blocking({
            let file = dir.join("grandchild");
            move || loop {
                if let Some(pid) = std::fs::read_to_string(&file).ok().and_then(|t| t.trim().parse::<i32>().ok()) {
                    return pid;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }) => pid.unwrap(),
    };
    assert!(!gone(pid));
    drop(run);
    assert_gone_soon(pid);
}

#[tokio::test]
async fn output_past_the_cap_fails_the_run() {
    let dir = Workdir::empty();
    let action = "    command: [head, -c, '2048', /dev/zero]\n    max_output_size: 1KB\n";
    let engine = load(&dir, &shell(action)).unwrap();
    let err = run(&engine, json!({})).await.unwrap_err();
    assert!(
        err.starts_with("command `head -c 2048 /dev/zero`: its stdout passed")
            && err.ends_with("(max_output_size)"),
        "{err}"
    );
}

const CALLS: &str = r#"
components:
  - id: sub
    type: workflow
    action:
      workflow: inner
      input: {text: '${input.text} and more'}
      output: {sub: '${output}'}
workflows:
  - id: outer
    default: true
    jobs:
      - id: call
        component: sub
        input: {text: '${input.text}'}
  - id: inner
    private: true
    job:
      id: echo
      type: delay
      output: 'inner got ${input.text}'
"#;

#[tokio::test]
async fn a_workflow_component_runs_another_workflow_private_ones_too() {
    let dir = Workdir::empty();
    let engine = load(&dir, CALLS).unwrap();
    assert_eq!(
        run(&engine, json!({"text": "this"})).await,
        Ok(json!({"sub": "inner got this and more"}))
    );
    // The inner workflow stays private to the API.
    assert!(engine.workflow(Some("inner"), Access::Public).is_err());
}

/// On a thread with the stack `up`'s and `run`'s threads have (the test thread's 2 MiB is
/// short of sixteen nested calls in a debug build).
#[test]
fn workflow_calls_are_bounded_and_cycles_refused_at_load() {
    std::thread::Builder::new()
        .stack_size(compose::workflow::RUN_STACK)
        .spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(bounded_and_refused())
        })
        .unwrap()
        .join()
        .unwrap();
}

async fn bounded_and_refused() {
    let dir = Workdir::empty();
    // w0 → w1 → … → w16: seventeen deep.
    let mut yaml = String::from("components:\n  - id: next\n    type: workflow\n    actions:\n");
    for i in 1..=16 {
        yaml.push_str(&format!("      - {{id: to{i}, workflow: w{i}}}\n"));
    }
    yaml.push_str("workflows:\n");
    for i in 0..=16 {
        let job = match i {
            16 => "{id: end, type: delay, output: bottom}".to_string(),
            _ => format!("{{id: call, component: next, action: to{}}}", i + 1),
        };
        let default = if i == 0 { "    default: true\n" } else { "" };
        yaml.push_str(&format!("  - id: w{i}\n{default}    jobs: [{job}]\n"));
    }
    let engine = load(&dir, &yaml).unwrap();
    let err = run(&engine, json!({})).await.unwrap_err();
    assert!(err.contains("is called 16 workflows deep"), "{err}");

    let cycle = CALLS.replace(
        "      type: delay\n      output: 'inner got ${input.text}'\n",
        "      component: sub\n",
    );
    let err = refused(&dir, &cycle);
    assert!(
        err.contains(":20:7:") && err.contains("inner → inner"),
        "{err}"
    );
}

#[tokio::test]
async fn shell_components_written_wrong_are_refused_at_load_with_their_place() {
    let dir = Workdir::empty();
    let refused = |action: &str| refused(&dir, &shell(action));
    let err = refused("    command: echo hi\n");
    assert!(
        err.contains(":5:5:") && err.contains("not one string: no shell reads it"),
        "{err}"
    );
    let err = refused("    output: ${result}\n");
    assert!(err.contains("needs 'command'"), "{err}");
    let err = refused("    command: [echo, {a: 1}]\n");
    assert!(err.contains("each part of a command is a text"), "{err}");
    let err = refused("    command: [echo, '${input.}']\n");
    assert!(err.contains(":5:"), "{err}");
    let err = refused("    command: [cat]\n    streaming: true\n");
    assert!(
        err.contains(":6:5:") && err.contains("stream of lines"),
        "{err}"
    );
}

/// Two workflows whose jobs share an id, each with a component written in the job.
const INLINE: &str = r#"
workflows:
  - id: first
    default: true
    job:
      id: call
      component:
        type: shell
        action: {command: [echo, first], output: '${result.stdout}'}
  - id: second
    job:
      id: call
      component:
        type: shell
        action: {command: [echo, second], output: '${result.stdout}'}
  - id: nested
    job:
      id: call
      component: {type: workflow, action: {workflow: second}}
"#;

#[tokio::test]
async fn a_component_written_in_a_job_is_that_jobs_own() {
    let dir = Workdir::empty();
    let engine = load(&dir, INLINE).unwrap();
    // Not the first one created under the job's id (OD21); a shell needs no `driver` (OD22).
    for (id, said) in [
        ("first", "first"),
        ("second", "second"),
        ("nested", "second"),
    ] {
        let request = engine.request(Some(id), json!({}), Access::All).unwrap();
        let output = engine.run(&request, json!({})).await;
        match output {
            Ok(compose::RunOutput::Value(value)) => assert_eq!(value, json!(said), "{id}"),
            _ => panic!("{id}: a value expected"),
        }
    }

    let broken = INLINE.replace("{command: [echo, second],", "{command: echo second,");
    let err = refused(&dir, &broken);
    assert!(
        err.contains(":15:18:") && err.contains("not one string"),
        "{err}"
    );
}

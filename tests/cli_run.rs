//! `model-compose run` and `validate`, the real binary against the mock upstream: exact bytes
//! printed, exit codes, streaming, and the request the upstream receives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use support::mock_upstream::{Behavior, MockUpstream};
use support::{stderr, stdout, Workdir, TEST_KEY};

const PROMPT: &str =
    r#"{"prompt": "Explain machine learning in simple terms", "temperature": 0.7}"#;

#[test]
fn the_seed_prints_the_tokens_inline_and_sends_what_the_config_implies() {
    let mock = MockUpstream::start(Behavior::tokens(&["Hello", " world", "!\nNew", " line"]));
    let dir = Workdir::seed(&mock.base_url);
    let output = support::run(&dir, &["run", "--input", r#"{"prompt": "Hi"}"#]);
    assert_eq!(stderr(&output), "");
    assert_eq!(stdout(&output), "Hello world!\nNew line\n");
    assert_eq!(output.status.code(), Some(0));

    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].body,
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}],
               "temperature": 0.7, "stream": true})
    );
    let header = |name: &str| requests[0].headers[name].to_str().unwrap().to_string();
    assert_eq!(header("authorization"), format!("Bearer {TEST_KEY}"));
    assert_eq!(header("content-type"), "application/json");
}

#[test]
fn the_readme_command_works_verbatim_and_passes_the_temperature() {
    let mock = MockUpstream::start(Behavior::tokens(&["ML", " is", " learning."]));
    let dir = Workdir::seed(&mock.base_url);
    let input = "{\n    \"prompt\": \"Explain machine learning in simple terms\",\n    \"temperature\": 0.2\n  }";
    let output = support::run(&dir, &["run", "--input", input]);
    assert_eq!(stdout(&output), "ML is learning.\n");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(mock.requests()[0].body["temperature"], json!(0.2));
    assert_eq!(
        mock.requests()[0].body["messages"][0]["content"],
        "Explain machine learning in simple terms"
    );
}

#[test]
fn the_first_token_is_printed_before_the_upstream_has_finished() {
    let mock = MockUpstream::start(
        Behavior::tokens(&["one ", "two ", "three ", "four ", "five"])
            .delay(Duration::from_millis(250)),
    );
    let dir = Workdir::seed(&mock.base_url);
    let mut child = support::command(&dir, &["run", "--input", PROMPT])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 4];
    stdout.read_exact(&mut first).unwrap();
    let first_at = Instant::now();
    assert_eq!(&first, b"one ");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(rest, "two three four five\n");
    let finished = mock.finished_at().expect("the mock finished its stream");
    assert!(
        first_at + Duration::from_millis(500) < finished,
        "the first token came {:?} before the upstream finished",
        finished - first_at
    );
}

#[test]
fn an_upstream_error_is_reported_with_its_status_and_message() {
    let body = r#"{"error": {"message": "Incorrect API key provided: sk-test-**cdef", "type": "invalid_request_error"}}"#;
    let mock = MockUpstream::start(Behavior::error(401, body));
    let dir = Workdir::seed(&mock.base_url);
    let output = support::run(&dir, &["run", "--input", PROMPT]);
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        "error: upstream returned 401: Incorrect API key provided: sk-test-**cdef\n"
    );
    assert_eq!(output.status.code(), Some(1));

    mock.set(Behavior::error(500, "internal trouble"));
    let output = support::run(&dir, &["run", "--input", PROMPT]);
    assert_eq!(
        stderr(&output),
        "error: upstream returned 500: internal trouble\n"
    );
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn an_upstream_error_never_shows_the_api_key() {
    let echo = format!(r#"{{"error": {{"message": "bad key {TEST_KEY}"}}}}"#);
    let mock = MockUpstream::start(Behavior::error(401, &echo));
    let dir = Workdir::seed(&mock.base_url);
    let output = support::run(&dir, &["run", "--input", PROMPT]);
    assert_eq!(
        stderr(&output),
        "error: upstream returned 401: bad key [redacted]\n"
    );
    // A template that fails on the key's value does not print it either.
    dir.write(
        "model-compose.yml",
        &support::seed_for(&mock.base_url).replace(
            "${input.temperature as number | 0.7}",
            "${context.none as number | ${env.OPENAI_API_KEY}}",
        ),
    );
    let output = support::run(&dir, &["run", "--input", PROMPT]);
    assert_eq!(
        stderr(&output),
        "error: cannot convert \"[redacted]\" to a number\n"
    );
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn a_stream_cut_off_midway_prints_what_came_then_fails() {
    let mock =
        MockUpstream::start(Behavior::tokens(&["partial", " answer", " never"]).cut_after(2));
    let dir = Workdir::seed(&mock.base_url);
    let output = support::run(&dir, &["run", "--input", PROMPT]);
    assert_eq!(stdout(&output), "partial answer\n");
    assert!(
        stderr(&output).starts_with("error: upstream stream failed: "),
        "{}",
        stderr(&output)
    );
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn a_stalled_upstream_ends_at_the_action_timeout() {
    let mock = MockUpstream::start(Behavior::stall());
    let dir = Workdir::seed(&mock.base_url);
    let config = support::seed_for(&mock.base_url).replace(
        "    stream_format: json",
        "    stream_format: json\n    timeout: 1s",
    );
    dir.write("model-compose.yml", &config);
    let started = Instant::now();
    let output = support::run(&dir, &["run", "--input", PROMPT]);
    assert_eq!(
        stderr(&output),
        "error: upstream did not finish within 1 s\n"
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn inputs_are_checked_before_anything_is_sent() {
    let mock = MockUpstream::start(Behavior::tokens(&["never"]));
    let dir = Workdir::seed(&mock.base_url);
    let cases = [
        (
            r#"{"temperature": 0.5}"#,
            "error: input.prompt is required\n",
        ),
        ("{}", "error: input.prompt is required\n"),
        (
            r#"{"prompt": "Hi", "temperature": "hot"}"#,
            "error: input.temperature must be a number, got \"hot\"\n",
        ),
        (
            r#"{"prompt": "Hi", "temperature": "NaN"}"#,
            "error: input.temperature must be a number, got \"NaN\"\n",
        ),
        (
            r#"["Hi"]"#,
            "error: input must be a JSON object, got [\"Hi\"]\n",
        ),
    ];
    for (input, message) in cases {
        let output = support::run(&dir, &["run", "--input", input]);
        assert_eq!(stderr(&output), message, "input {input}");
        assert_eq!(output.status.code(), Some(1), "input {input}");
    }
    assert!(mock.requests().is_empty());
}

#[test]
fn usage_and_config_errors_exit_2() {
    let mock = MockUpstream::start(Behavior::tokens(&["never"]));
    let dir = Workdir::seed(&mock.base_url);
    let output = support::run(&dir, &["run", "--input", "{not json"]);
    assert!(
        stderr(&output).starts_with("error: --input is not valid JSON: "),
        "{}",
        stderr(&output)
    );
    assert_eq!(output.status.code(), Some(2));

    let output = support::run(&dir, &["run", "nope", "--input", PROMPT]);
    assert_eq!(
        stderr(&output),
        "error: workflow not found: nope (workflows: __workflow__)\n"
    );
    assert_eq!(output.status.code(), Some(2));

    std::fs::remove_file(dir.path.join(".env")).unwrap();
    let output = support::run(&dir, &["run", "--input", PROMPT]);
    assert!(
        stderr(&output).ends_with(
            "model-compose.yml:24:29: environment variable 'OPENAI_API_KEY' is not set and no default value provided\n"
        ),
        "{}",
        stderr(&output)
    );
    assert_eq!(output.status.code(), Some(2));

    dir.write(
        "model-compose.yml",
        "workflow:\n  job:\n    input: x\n   output: y\n",
    );
    let output = support::run(&dir, &["run"]);
    assert!(
        stderr(&output).contains("model-compose.yml:4:4: did not find expected key"),
        "{}",
        stderr(&output)
    );
    assert_eq!(output.status.code(), Some(2));

    let empty = Workdir::empty();
    let output = support::run(&empty, &["run"]);
    assert!(
        stderr(&output).starts_with("error: model-compose.yml or model-compose.yaml not found in ")
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(mock.requests().is_empty());
}

#[test]
fn input_from_a_file_env_overrides_and_output_to_a_file() {
    let mock = MockUpstream::start(Behavior::tokens(&["saved", " text"]));
    let dir = Workdir::seed(&mock.base_url);
    dir.write("input.json", r#"{"prompt": "from a file"}"#);
    let output = support::run(
        &dir,
        &[
            "run",
            "--input",
            "@input.json",
            "-o",
            "answer.txt",
            "-e",
            "OPENAI_API_KEY=sk-from-flag",
        ],
    );
    assert_eq!(stdout(&output), "saved text\n");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(dir.path.join("answer.txt")).unwrap(),
        "saved text"
    );
    let request = &mock.requests()[0];
    assert_eq!(request.body["messages"][0]["content"], "from a file");
    assert_eq!(request.headers["authorization"], "Bearer sk-from-flag");
}

#[test]
fn non_stream_outputs_print_as_pretty_json() {
    let mock = MockUpstream::start(Behavior::tokens(&["a", "b"]));
    let dir = Workdir::seed(&mock.base_url);
    let config = support::seed_for(&mock.base_url).replace(
        "    output: ${output as stream/text}",
        "    output:\n      answer: ${output as text}\n      model: gpt-4o",
    );
    dir.write("model-compose.yml", &config);
    let output = support::run(&dir, &["run", "--input", PROMPT]);
    assert_eq!(
        stdout(&output),
        "{\n  \"answer\": \"ab\",\n  \"model\": \"gpt-4o\"\n}\n"
    );
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn validate_reports_the_seed() {
    let mock = MockUpstream::start(Behavior::tokens(&[]));
    let dir = Workdir::seed(&mock.base_url);
    let output = support::run(&dir, &["validate"]);
    assert_eq!(
        stdout(&output),
        "✅ Configuration is valid (controller: http-server, 1 component(s), 1 workflow(s))\n"
    );
    assert_eq!(output.status.code(), Some(0));

    dir.write(
        "model-compose.yml",
        &support::seed_for(&mock.base_url).replace("  job:\n", "  job:\n    component: nope\n"),
    );
    let output = support::run(&dir, &["validate"]);
    assert_eq!(
        stderr(&output),
        format!(
            "❌ Configuration has semantic errors:\n  - {}:14:5: workflow '__workflow__' job '__job__': component 'nope' not found\n",
            dir.path.join("model-compose.yml").display()
        )
    );
    assert_eq!(output.status.code(), Some(2));

    // Every configuration error exits 2, from `validate` and from `up`; no secret is shown.
    dir.write(
        "model-compose.yml",
        &support::seed_for(&mock.base_url)
            .replace("    port: 8081", "    port: ${env.OPENAI_API_KEY}"),
    );
    for command in ["validate", "up"] {
        let output = support::run(&dir, &[command]);
        assert_eq!(output.status.code(), Some(2), "{command}");
        let err = stderr(&output);
        assert!(err.contains("model-compose.yml:8:11: "), "{command}: {err}");
        assert!(
            err.contains("[redacted]") && !err.contains(TEST_KEY),
            "{command}: {err}"
        );
    }
}

/// Keys nothing reads (the original ignores them silently) are warnings with their place and
/// the nearest known key from `validate` and `up`, which still load the file; `validate
/// --strict` fails on them.
#[test]
fn unread_keys_are_warnings_and_strict_validate_fails_on_them() {
    let mock = MockUpstream::start(Behavior::tokens(&["Hi"]));
    let dir = Workdir::seed(&mock.base_url);
    let config = support::seed_for(&mock.base_url)
        .replace("  base_path: /api\n", "  base_path: /api\n    bogus: 2\n")
        .replace(
            "    method: POST\n",
            "    method: POST\n    stream_fromat: json\n",
        )
        + "gateway:\n  type: http-tunnel\n";
    dir.write("model-compose.yml", &config);
    let file = dir.path.join("model-compose.yml");
    let warnings = [
        format!(
            "{}:6:5: unknown key `controller.adapter.bogus`, ignored",
            file.display()
        ),
        format!(
            "{}:24:5: unknown key `component.action.stream_fromat`, ignored (did you mean \
             `stream_format`?)",
            file.display()
        ),
        format!("{}:37:1: unknown key `gateway`, ignored", file.display()),
    ];

    let output = support::run(&dir, &["validate"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).starts_with("✅ Configuration is valid"));
    let told: Vec<String> = warnings.iter().map(|w| format!("⚠️  {w}\n")).collect();
    assert_eq!(stderr(&output), told.concat());

    let output = support::run(&dir, &["validate", "--strict"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stdout(&output), "");
    let listed: Vec<String> = warnings.iter().map(|w| format!("  - {w}\n")).collect();
    assert_eq!(
        stderr(&output),
        format!(
            "❌ Configuration has keys nothing reads (--strict):\n{}",
            listed.concat()
        )
    );

    // `up` loads the file, says the same in its log and serves.
    let mut server = support::Server::start_with(&dir, &config);
    let log = std::fs::read_to_string(dir.path.join("server.log")).unwrap();
    for warning in &warnings {
        assert!(log.contains(warning.as_str()), "{warning} not in:\n{log}");
    }
    server.stop();
}

/// `run` with `stdin` as what the person types.
fn run_answering(dir: &Workdir, args: &[&str], stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = support::command(dir, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn interrupts_are_asked_on_the_terminal() {
    let dir = Workdir::empty();
    dir.write(
        "model-compose.yml",
        &format!("{}{}", testkit::REVIEWED, testkit::SH_COMPONENT),
    );
    let args = ["run", "--input", r#"{"name": "Bob"}"#];
    // Enter goes on before; a line of text replaces the result after.
    let output = run_answering(&dir, &args, b"\nedited output\n");
    assert_eq!(stdout(&output), "{\n  \"result\": \"edited output\"\n}\n");
    assert_eq!(output.status.code(), Some(0));
    let asked = "\ninterrupt — job '__job__' (before)\nAbout to execute: echo \"hi Bob\"\n\
                 {\n  \"command\": \"echo \\\"hi Bob\\\"\"\n}\n✋ Action required — press Enter to \
                 continue, or type an answer (JSON or text): \ninterrupt — job '__job__' (after)\n\
                 Command finished.\n{\n  \"result\": \"hi Bob\"\n}\n✋ Action required — press Enter to continue, or type an \
                 answer (JSON or text): ";
    assert_eq!(stderr(&output), asked);
    // A line of JSON is that value: here the job's input.
    let output = run_answering(&dir, &args, b"{\"command\": \"echo replaced\"}\n\n");
    assert_eq!(stdout(&output), "{\n  \"result\": \"replaced\"\n}\n");
    // --auto-resume asks nothing.
    let output = run_answering(&dir, &[&args[..], &["--auto-resume"]].concat(), b"");
    assert_eq!(
        (stdout(&output), stderr(&output)),
        ("{\n  \"result\": \"hi Bob\"\n}\n".into(), String::new())
    );
    // Nobody to answer: the run fails, saying what to do.
    let output = run_answering(&dir, &args, b"");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).ends_with(
            "no answer: standard input is closed (use --auto-resume to go on without asking)\n\
             error: job '__job__' was waiting for an answer that will not come\n"
        ),
        "{}",
        stderr(&output)
    );
}

//! Broken configurations, one per row: each must be refused with the file, the line and the
//! column of what is wrong, a message that says what, and never a value of the environment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use compose::config::{self, Sources};
use testkit::Workdir;

const SECRET: &str = "sk-secret-value-0123456789";

/// A valid config (with a few lines), to break one thing at a time.
const BASE: &str = "\
component:
  type: http-client
  base_url: http://127.0.0.1:9/v1
  action:
    path: /chat
    headers:
      Authorization: Bearer ${env.KEY}
    body:
      prompt: ${input.prompt as text}
workflow:
  job:
    output: ${output as stream/text}
";

/// (what is broken, the config, `line:column`, a part of the message)
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "indentation",
        "controller:\n  webui:\n    port: 8081\n   host: x\n",
        "4:4",
        "did not find expected key",
    ),
    (
        "a tab",
        "component:\n\ttype: http-client\n",
        "2:1",
        "cannot start any token",
    ),
    (
        "unknown component type",
        "component:\n  type: model\n",
        "2:9",
        "unknown variant `model`, expected one of `http-client`, `shell`, `workflow`",
    ),
    (
        "component without a type",
        "component:\n  base_url: http://x\n  action: {endpoint: http://x}\n",
        "2:3",
        "missing field `type`",
    ),
    (
        "a method",
        "component:\n  type: http-client\n  action:\n    endpoint: http://x\n    method: PUTT\n",
        "5:13",
        "unknown variant `PUTT`",
    ),
    (
        "a stream format",
        "component:\n  type: http-client\n  action:\n    endpoint: http://x\n    stream_format: jsonl\n",
        "5:20",
        "unknown variant `jsonl`",
    ),
    (
        "a port that is a word",
        "controller:\n  webui:\n    port: high\n",
        "3:11",
        "invalid type: string \"high\"",
    ),
    (
        "a port too large",
        "controller:\n  adapter:\n    type: http-server\n    port: 70000\n",
        "4:5",
        "port must be between 1 and 65535",
    ),
    (
        "a port from the environment that is a secret",
        "controller:\n  webui:\n    port: ${env.KEY}\n",
        "3:11",
        "invalid type: string \"[redacted]\"",
    ),
    (
        "a negative port",
        "controller:\n  webui:\n    port: -1\n",
        "3:11",
        "invalid type: integer `-1`",
    ),
    (
        "a second document after ---",
        "component:\n  type: http-client\n---\nworkflow: {}\n",
        "3:1",
        "a second YAML document starts here",
    ),
    (
        "a second document by indentation",
        "  controller:\ncontroller:",
        "2:1",
        "a second YAML document starts here",
    ),
    (
        "a second document after a flow mapping",
        "{}[",
        "1:3",
        "a second YAML document starts here",
    ),
    (
        "an empty environment reference",
        "component:\n  type: http-client\n  base_url: ${env.}\n",
        "3:13",
        "${env.NAME} or ${env.NAME | default}",
    ),
    (
        "an unclosed environment reference",
        "component:\n  type: http-client\n  base_url: \"${env.HOST\"\n",
        "3:14",
        "${env.NAME} or ${env.NAME | default}",
    ),
    (
        "a missing environment variable",
        "component:\n  type: http-client\n  base_url: http://${env.NOPE}/v1\n",
        "3:20",
        "environment variable 'NOPE' is not set",
    ),
    (
        "an unknown type",
        "component:\n  type: http-client\n  action:\n    endpoint: http://x\n    body:\n      n: ${input.n as ???}\n",
        "6:7",
        "unknown type `???`",
    ),
    (
        "a misspelt type in an output",
        "component: {type: http-client, action: {endpoint: http://x}}\nworkflow:\n  job:\n    output: ${output as strem/text}\n",
        "4:5",
        "unknown type `strem`",
    ),
    (
        "an unclosed expression",
        "component:\n  type: http-client\n  action:\n    endpoint: http://x\n    body:\n      prompt: \"${input.prompt\"\n",
        "6:7",
        "is not a valid ${...} expression",
    ),
    (
        "an empty expression",
        "component:\n  type: http-client\n  action:\n    endpoint: http://x\n    params:\n      q: ${ }\n",
        "6:7",
        "is not a valid ${...} expression",
    ),
    (
        "a bad expression in a default",
        "component:\n  type: http-client\n  action:\n    endpoint: http://x\n    body:\n      q: ${input.q | ${input.r as bogus}}\n",
        "6:7",
        "unknown type `bogus`",
    ),
    (
        "a default that is not of its type",
        "component:\n  type: http-client\n  action:\n    endpoint: http://x\n    body:\n      n: ${input.n as integer | abc}\n",
        "6:7",
        "the default of input.n is not an integer",
    ),
    (
        "headers that are a string",
        "component:\n  type: http-client\n  action:\n    endpoint: http://x\n    headers: \"Authorization: x\"\n",
        "5:5",
        "'headers' must be a mapping",
    ),
    (
        "params that are a list",
        "component:\n  type: http-client\n  action:\n    endpoint: http://x\n    params: [a, b]\n",
        "5:5",
        "'params' must be a mapping",
    ),
    (
        "a component header that is a mapping",
        "component:\n  type: http-client\n  headers:\n    X-Thing: {a: 1}\n  action: {endpoint: http://x}\n",
        "3:3",
        "header \"X-Thing\" must be a string",
    ),
    (
        "both endpoint and path",
        "component:\n  type: http-client\n  base_url: http://x\n  action:\n    endpoint: http://x\n    path: /y\n",
        "4:3",
        "either 'endpoint' or 'path' must be set, but not both",
    ),
    (
        "neither endpoint nor path",
        "component:\n  type: http-client\n  action:\n    method: GET\n",
        "3:3",
        "either 'endpoint' or 'path' must be set, but not both",
    ),
    (
        "a path without base_url",
        "component:\n  type: http-client\n  action:\n    path: /chat\n",
        "4:5",
        "uses 'path' but 'base_url' is not set",
    ),
    (
        "a duplicate component id",
        "components:\n  - {id: a, type: http-client, action: {endpoint: http://x}}\n  - type: http-client\n    id: a\n    action: {endpoint: http://y}\n",
        "4:5",
        "duplicate component id 'a'",
    ),
    (
        "a component id __default__",
        "component:\n  id: __default__\n  type: http-client\n  action: {endpoint: http://x}\n",
        "2:3",
        "component id cannot be '__default__'",
    ),
    (
        "a duplicate workflow id",
        "component: {type: http-client, action: {endpoint: http://x}}\nworkflows:\n  - {id: w, job: {}}\n  - id: w\n    job: {}\n",
        "4:5",
        "duplicate workflow id 'w'",
    ),
    (
        "a workflow id __default__",
        "component: {type: http-client, action: {endpoint: http://x}}\nworkflow:\n  id: __default__\n  job: {}\n",
        "3:3",
        "workflow id cannot be '__default__'",
    ),
    (
        "a workflow without jobs",
        "component: {type: http-client, action: {endpoint: http://x}}\nworkflow:\n  title: Empty\n",
        "2:1",
        "workflow '__workflow__' has no jobs",
    ),
    (
        "a job naming a missing component",
        "component: {type: http-client, action: {endpoint: http://x}}\nworkflow:\n  job:\n    component: nope\n",
        "4:5",
        "component 'nope' not found",
    ),
    (
        "a job naming a missing action",
        "component: {type: http-client, action: {endpoint: http://x}}\nworkflow:\n  job:\n    action: nope\n",
        "4:5",
        "action 'nope' not found in component '__component__'",
    ),
    (
        "several components and none is the default",
        "components:\n  - {id: a, type: http-client, action: {endpoint: http://x}}\n  - {id: b, type: http-client, action: {endpoint: http://y}}\nworkflow:\n  job:\n    output: x\n",
        "5:3",
        "there are several and none has 'default: true'",
    ),
    (
        "a job that depends on itself",
        "component: {type: http-client, action: {endpoint: http://x}}\nworkflow:\n  jobs:\n    - id: a\n      depends_on: [a]\n",
        "5:20",
        "depends on itself",
    ),
    (
        "a job that depends on an unknown job",
        "component: {type: http-client, action: {endpoint: http://x}}\nworkflow:\n  jobs:\n    - id: a\n      depends_on:\n        - b\n",
        "6:11",
        "depends on unknown job 'b'",
    ),
    (
        "a dependency cycle",
        "component: {type: http-client, action: {endpoint: http://x}}\nworkflow:\n  jobs:\n    - {id: a, depends_on: [b]}\n    - {id: b, depends_on: [a]}\n",
        "3:3",
        "the jobs' depends_on form a cycle",
    ),
    (
        "a duplicate job id",
        "component: {type: http-client, action: {endpoint: http://x}}\nworkflow:\n  jobs:\n    - id: a\n    - id: a\n",
        "5:7",
        "duplicate job id 'a'",
    ),
    (
        "depends_on that is a number",
        "component: {type: http-client, action: {endpoint: http://x}}\nworkflow:\n  jobs:\n    - id: a\n      depends_on: 3\n",
        "5:19",
        "invalid type: integer `3`",
    ),
    (
        "a duration that is not one",
        "controller:\n  shutdown_timeout: soon\n",
        "2:3",
        "unsupported duration format: \"soon\"",
    ),
    (
        "an empty access key",
        "controller:\n  access_keys: [\"\"]\n",
        "2:3",
        "an access key cannot be empty",
    ),
    (
        "an origin without a scheme",
        "controller:\n  adapter:\n    type: http-server\n    origins: app.example.com\n",
        "4:5",
        "an origin is a scheme and a host",
    ),
    (
        "an unknown operator in a conditional",
        "component:\n  type: http-client\n  action:\n    endpoint: http://x\n    body:\n      mode:\n        ?: {input: '${input.style}', operator: like, value: x, if_true: a}\n",
        "6:7",
        "`?`: unknown operator `like` (one of eq, neq,",
    ),
    (
        "a split without fields",
        "component: {type: http-client, action: {endpoint: http://x}}\nworkflow:\n  job:\n    output:\n      \"|\": ${output.items}\n",
        "4:5",
        "`|` (split) needs at least one output field beside it",
    ),
    (
        "a map whose source mapping has no input",
        "component: {type: http-client, action: {endpoint: http://x}}\nworkflow:\n  job:\n    output:\n      \"*\": {where: {input: x}}\n      name: ${item.name}\n",
        "4:5",
        "`*`: a mapping as the source needs `input` (the list)",
    ),
    (
        "a where that is a list",
        "component: {type: http-client, action: {endpoint: http://x}}\nworkflow:\n  job:\n    output:\n      \"*\": {input: '${output}', where: [1]}\n",
        "4:5",
        "`where` is a mapping (a condition, or all / any / not), got a list",
    ),
];

fn load(text: &str) -> Result<config::Config, String> {
    let dir = Workdir::empty();
    let path = dir.write("model-compose.yml", text);
    let sources = Sources::isolated(&dir.path, &[("KEY", SECRET)]);
    config::load(std::slice::from_ref(&path), &sources).map_err(|err| {
        let text = err.to_string();
        let prefix = format!("{}:", path.display());
        text.strip_prefix(&prefix).unwrap_or(&text).to_string()
    })
}

#[test]
fn every_broken_config_is_refused_with_its_place() {
    assert!(CASES.len() >= 40, "{} cases", CASES.len());
    assert!(load(BASE).is_ok(), "the base config is valid");
    let mut wrong = Vec::new();
    for (what, text, place, message) in CASES {
        match load(text) {
            Ok(_) => wrong.push(format!("{what}: accepted")),
            Err(err) => {
                let ok = err.starts_with(&format!("{place}: "))
                    && err.contains(message)
                    && !err.contains(SECRET);
                if !ok {
                    wrong.push(format!("{what}: {err}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let config = load(&format!("\u{feff}{BASE}")).unwrap();
    assert_eq!(config.workflows.len(), 1);
    let err = load("\u{feff}component:\n  type: model\n").unwrap_err();
    assert!(err.starts_with("2:9: "), "{err}");
}

#[test]
fn places_are_those_of_the_file_as_written() {
    // The substituted value is longer than the reference; the place is still the original's.
    let text =
        "component:\n  type: http-client\n  action: {endpoint: \"${env.KEY}\", method: PUTT}\n";
    let err = load(text).unwrap_err();
    assert!(err.starts_with("3:44: "), "{err}");
    assert!(!err.contains(SECRET), "{err}");
}

#[test]
fn locating_a_second_document_is_linear() {
    // A megabyte of mappings, then text that makes it a second document.
    let mut text = String::from("workflow:\n  jobs:\n");
    while text.len() < 1 << 20 {
        text.push_str("    - {id: job, description: \"some words to fill the line with\"}\n");
    }
    text.push_str("}\n");
    let started = std::time::Instant::now();
    let err = load(&text).unwrap_err();
    assert!(
        err.contains("a second YAML document") || err.contains("did not find"),
        "{err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?} for a 1 MiB file",
        started.elapsed()
    );
}

//! What the engine's job tests share: a config loaded from text in a work directory, and a run
//! that gives a value or the error's message.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use compose::config::{self, Sources};
use compose::record::Point;
use compose::workflow::Access;
use compose::workflow::{Answerer, Asked};
use compose::{Engine, RunOutput};
use serde_json::{json, Value};
use testkit::Workdir;

/// The engine of `yaml`, written as `model-compose.yml` in `dir`; else the load error.
pub fn load(dir: &Workdir, yaml: &str) -> Result<Engine, String> {
    load_with(dir, yaml, &[])
}

/// [`load`], with these variables in the environment `${env.X}` reads.
pub fn load_with(dir: &Workdir, yaml: &str, vars: &[(&str, &str)]) -> Result<Engine, String> {
    let path = dir.write("model-compose.yml", yaml);
    let sources = Sources::isolated(&dir.path, vars);
    let config = config::load(&[path], &sources).map_err(|err| err.to_string())?;
    Engine::new(&config)
}

/// Runs the default workflow with `input`: its value, or the error's message.
pub async fn run(engine: &Engine, input: Value) -> Result<Value, String> {
    let request = engine.request(None, input, Access::All).unwrap();
    let output = engine.run(&request, json!({})).await;
    match output {
        Ok(RunOutput::Value(value)) => Ok(value),
        Ok(_) => panic!("a value expected"),
        Err(err) => Err(err.to_string()),
    }
}

/// Runs the default workflow with `input`, `answerer` answering its interrupts.
pub async fn run_attended(
    engine: &Engine,
    input: Value,
    answerer: &dyn compose::workflow::Answerer,
) -> Result<Value, String> {
    let request = engine.request(None, input, Access::All).unwrap();
    let watch = compose::workflow::Watch {
        observer: &|_| {},
        usage: std::sync::Arc::default(),
        answerer,
        traced: None,
    };
    let output = engine.run_observed(&request, json!({}), watch).await;
    match output {
        Ok(RunOutput::Value(value)) => Ok(value),
        Ok(_) => panic!("a value expected"),
        Err(err) => Err(err.to_string()),
    }
}

/// A person the tests script: each point they are shown is answered at once.
/// Answers each point with what `answer` gives for it, and keeps each publication.
pub struct Person {
    answer: Box<dyn Fn(&Point) -> Value + Send + Sync>,
    pub shown: parking_lot::Mutex<Vec<Vec<Point>>>,
}

impl Person {
    pub fn answering(answer: impl Fn(&Point) -> Value + Send + Sync + 'static) -> Self {
        Self {
            answer: Box::new(answer),
            shown: parking_lot::Mutex::new(Vec::new()),
        }
    }

    /// Each publication, as `job:phase` names.
    pub fn publications(&self) -> Vec<Vec<String>> {
        self.shown
            .lock()
            .iter()
            .map(|points| {
                points
                    .iter()
                    .map(|p| format!("{}:{}", p.job_id, p.phase.as_str()))
                    .collect()
            })
            .collect()
    }
}

impl Answerer for Person {
    fn ask(&self, points: Vec<Asked>) {
        self.shown
            .lock()
            .push(points.iter().map(|a| a.point.clone()).collect());
        for asked in points {
            asked.answer.send((self.answer)(&asked.point)).unwrap();
        }
    }
}

/// One row of a table of rules: a config, an input, and what the run gives (or a part of its
/// error's message).
pub struct Case {
    pub rule: &'static str,
    pub yaml: String,
    pub input: Value,
    pub gives: Result<Value, &'static str>,
}

/// Runs every row; fails naming each row that gave something else.
pub async fn check_cases(dir: &Workdir, cases: Vec<Case>) {
    let mut failed = Vec::new();
    for case in cases {
        let engine = load(dir, &case.yaml).unwrap_or_else(|err| panic!("{}: {err}", case.rule));
        let gives = run(&engine, case.input.clone()).await;
        let as_expected = match (&gives, &case.gives) {
            (Ok(value), Ok(expected)) => value == expected,
            (Err(message), Err(expected)) => message.contains(expected),
            _ => false,
        };
        if !as_expected {
            failed.push(format!(
                "{}: gave {gives:?}, expected {:?}",
                case.rule, case.gives
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// Why `yaml` does not load (the test fails when it does).
pub fn refused(dir: &Workdir, yaml: &str) -> String {
    match load(dir, yaml) {
        Ok(_) => panic!("loaded:\n{yaml}"),
        Err(err) => err,
    }
}

/// A plain stream's piece: its text.
pub fn text(piece: compose::Piece) -> String {
    match piece {
        compose::Piece::Text(text) => text,
        step => panic!("a text piece expected, got {step:?}"),
    }
}

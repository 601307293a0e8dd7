//! What the engine's job tests share: a config loaded from text in a work directory, and a run
//! that gives a value or the error's message.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use compose::config::{self, Sources};
use compose::workflow::Access;
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
    match engine.run(&request, json!({})).await {
        Ok(RunOutput::Value(value)) => Ok(value),
        Ok(_) => panic!("a value expected"),
        Err(err) => Err(err.to_string()),
    }
}

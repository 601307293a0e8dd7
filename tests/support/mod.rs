//! Shared by the integration tests: a mock OpenAI-compatible upstream on 127.0.0.1, and
//! helpers to run the real `model-compose` binary in a scratch directory.
#![allow(dead_code)] // each test file uses its own part of this module

pub mod mock_upstream;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The seed example's configuration, as shipped.
pub const SEED: &str =
    include_str!("../../examples/openai-chat-completions-stream/model-compose.yml");

/// The API key the tests put in `.env`.
pub const TEST_KEY: &str = "sk-test-0123456789abcdef";

/// A scratch directory holding a config, removed when dropped.
pub struct Workdir {
    pub path: PathBuf,
}

impl Workdir {
    /// A directory with the seed config pointed at `base_url` and a `.env` with the test key.
    pub fn seed(base_url: &str) -> Self {
        let dir = Self::empty();
        dir.write("model-compose.yml", &seed_for(base_url));
        dir.write(".env", &format!("OPENAI_API_KEY={TEST_KEY}\n"));
        dir
    }

    pub fn empty() -> Self {
        let path = std::env::temp_dir().join(format!("mc-it-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&path).unwrap();
        Self { path }
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `model-compose ARGS` run to completion in this directory.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary());
        command
            .args(args)
            .current_dir(&self.path)
            .env_remove("OPENAI_API_KEY");
        command
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The binary cargo built for these tests.
pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_model-compose"))
}

/// The seed config with its OpenAI base URL replaced.
pub fn seed_for(base_url: &str) -> String {
    let seed = SEED.replace("https://api.openai.com/v1", base_url);
    assert_ne!(seed, SEED, "the seed's base_url moved");
    seed
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

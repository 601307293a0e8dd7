//! The `controller` block: how the workflows are served.

use serde::{Deserialize, Deserializer};

/// `controller:`. Only the web UI is read so far; other keys are accepted and ignored,
/// as the original ignores unknown keys.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Controller {
    /// `controller.webui`: absent means no web UI.
    #[serde(default)]
    pub webui: Option<WebUi>,
}

/// `controller.webui`: where the web UI is served.
#[derive(Debug, Clone, Deserialize)]
pub struct WebUi {
    /// `gradio` and `static` both mean the built-in UI here.
    #[serde(default)]
    pub driver: WebUiDriver,
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "default_webui_port", deserialize_with = "port")]
    pub port: u16,
}

/// The original's web UI drivers; all of them are served by the built-in Leptos UI.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebUiDriver {
    #[default]
    Gradio,
    Static,
    Dynamic,
}

fn default_host() -> String {
    "127.0.0.1".to_string()
}

fn default_webui_port() -> u16 {
    8081
}

/// A TCP port, 1..=65535, as the original validates it.
fn port<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    let value = u64::deserialize(deserializer)?;
    match u16::try_from(value) {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(serde::de::Error::custom(format!(
            "port must be between 1 and 65535, got {value}"
        ))),
    }
}

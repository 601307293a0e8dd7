//! What the config says about MCP (D29): an `mcp-server` adapter's transport, and
//! `controller.mcp`, the MCP endpoint beside the REST API.

use serde::{Deserialize, Deserializer};

/// How an `mcp-server` adapter speaks MCP (spec §15.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum McpTransport {
    /// Streamable HTTP, with sessions, on the adapter's host and port.
    #[default]
    Http,
    /// JSON-RPC over standard input and output: a client launches `model-compose up`.
    Stdio,
}

/// Where `controller.mcp` serves MCP unless it names a path.
pub const DEFAULT_MCP_PATH: &str = "/mcp";

/// `mcp: true` serves MCP at `/mcp` on the API's port, `mcp: {path: /tools}` elsewhere;
/// `false` (or nothing) not at all.
pub(super) fn endpoint<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        path: String,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        On(bool),
        Settings(Settings),
    }
    match Option::<Raw>::deserialize(deserializer)? {
        None | Some(Raw::On(false)) => Ok(None),
        Some(Raw::On(true)) => Ok(Some(DEFAULT_MCP_PATH.to_string())),
        Some(Raw::Settings(Settings { path })) if path.starts_with('/') && path.len() > 1 => {
            Ok(Some(path.trim_end_matches('/').to_string()))
        }
        Some(Raw::Settings(Settings { path })) => Err(serde::de::Error::custom(format!(
            "mcp.path must start with / and name a path, got {path:?}"
        ))),
    }
}

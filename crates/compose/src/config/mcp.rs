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
    super::controller::served_at(deserializer, "mcp", DEFAULT_MCP_PATH, false)
}

//! The `tools` capability: tool servers the operator declares (OpenAPI, MCP). Until those are
//! configured, the host serves no tools: `available` lists none and every call answers the typed
//! `not-found` error, so the guest hands such calls back to the client instead of trapping.

use crate::bindings::tools::{self, InvokeOptions};
use crate::bindings::types::{ToolCall, ToolError, ToolResult, ToolSpec};

/// The per-instance view the guest's `tools` calls land on.
pub struct ToolsView;

impl tools::Host for ToolsView {
    async fn available(&mut self) -> Result<Vec<ToolSpec>, ToolError> {
        Ok(Vec::new())
    }
    async fn invoke(&mut self, calls: Vec<ToolCall>, _options: InvokeOptions) -> Vec<ToolResult> {
        calls
            .into_iter()
            .map(|c| ToolResult {
                call_id: c.call_id,
                output: Err(ToolError::NotFound),
            })
            .collect()
    }
}

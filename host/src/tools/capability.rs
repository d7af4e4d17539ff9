//! The `tools` capability as the component calls it: [`ToolsView`] is the per-instance side,
//! which keeps the catalogue the request was shown so names map back to the same tools even if a
//! server's list changes meanwhile.

use std::sync::Arc;

use super::{Catalog, ToolHost};
use crate::bindings::tools::{self as wit_tools, InvokeOptions};
use crate::bindings::types::{ToolCall, ToolError, ToolResult, ToolSpec};

/// The per-instance view the component's `tools` calls land on.
pub struct ToolsView {
    host: Arc<ToolHost>,
    catalog: Option<Arc<Catalog>>,
}

impl ToolsView {
    pub fn new(host: Arc<ToolHost>) -> Self {
        Self {
            host,
            catalog: None,
        }
    }

    async fn catalog(&mut self) -> Arc<Catalog> {
        match &self.catalog {
            Some(c) => Arc::clone(c),
            None => {
                let c = self.host.catalog().await;
                self.catalog = Some(Arc::clone(&c));
                c
            }
        }
    }
}

impl wit_tools::Host for ToolsView {
    async fn available(&mut self) -> Result<Vec<ToolSpec>, ToolError> {
        if self.host.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.catalog().await.specs())
    }

    async fn invoke(&mut self, calls: Vec<ToolCall>, options: InvokeOptions) -> Vec<ToolResult> {
        let catalog = self.catalog().await;
        let host = Arc::clone(&self.host);
        host.invoke(&catalog, calls, &options).await
    }
}

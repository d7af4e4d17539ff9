//! Plain-Rust mirrors of the WIT records the pipe logic works with, so every module compiles and
//! unit-tests natively; `component.rs` converts them to and from the generated bindings.

/// Who is asking and in which conversation (see `request-context` in `wit/pipe.wit`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestContext {
    pub request_id: String,
    pub user_id: Option<String>,
    pub user_email: Option<String>,
    pub user_name: Option<String>,
    pub user_role: Option<String>,
    pub chat_id: Option<String>,
    pub message_id: Option<String>,
    pub task: Option<String>,
    pub openwebui_caller: bool,
    pub cache_session_id: Option<String>,
    pub received_at_ms: u64,
    /// The client key's name (never the key); see `key-name` in `wit/pipe.wit`.
    pub key_name: String,
    /// Whether the key may assert Open WebUI identity and tasks.
    pub openwebui_key: bool,
}

impl RequestContext {
    /// Whose per-user state this request touches (breakers, stored artifacts): the key's name,
    /// and the user id when the key may assert one. Two Open WebUI instances with different keys
    /// never share a user's state, and key-only callers each get their key's own bucket.
    pub fn principal(&self) -> String {
        let key = if self.key_name.is_empty() {
            "local"
        } else {
            self.key_name.as_str()
        };
        match self.user_id.as_deref().filter(|u| !u.is_empty()) {
            Some(user) => format!("{key}:{user}"),
            None => key.to_string(),
        }
    }

    /// The owner recorded on the artifact rows this request writes, and required of the rows it
    /// replays: the first [`OWNER_HEX_CHARS`] hex digits of SHA-256 of [`principal`]
    /// (fixed-length, so it fits the store's 64-byte column whatever the user id).
    ///
    /// [`principal`]: Self::principal
    pub fn owner(&self) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::new()
            .chain_update(b"responses-pipe/owner/v1\0")
            .chain_update(self.principal().as_bytes())
            .finalize();
        let mut out = String::with_capacity(OWNER_HEX_CHARS);
        for b in digest.iter().take(OWNER_HEX_CHARS / 2) {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }
}

/// Length of [`RequestContext::owner`] (128 bits of SHA-256).
pub const OWNER_HEX_CHARS: usize = 32;

/// Token accounting in OpenAI chat terms, plus OpenRouter's cost in USD.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost_usd: Option<f64>,
}

/// An error as the caller sees it (OpenAI-style body plus the HTTP status to use).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorBody {
    pub message: String,
    pub error_type: String,
    pub code: Option<String>,
    pub http_status: u16,
    pub retry_after_seconds: Option<u32>,
    pub error_id: String,
}

/// Why a chat ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    Error,
}

/// One function call made by the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolCall {
    pub call_id: String,
    pub name: String,
    pub arguments_json: String,
}

/// A web source the answer cites.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Citation {
    pub url: String,
    pub title: String,
    pub content: String,
}

/// Something to deliver to the caller, in order, as it happens.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    TextDelta(String),
    ReasoningDelta(String),
    ToolCalls(Vec<ToolCall>),
    Citation(Citation),
    /// An image the model produced (`delta.images`): a `data:` URL or an https URL.
    Image(String),
    Usage(Usage),
    OpenWebUiEvent(String),
    Finish(FinishReason),
    Error(ErrorBody),
}

/// Why a call into the pipe failed before any output reached the caller.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PipeError {
    #[error("invalid request: {}", .0.message)]
    InvalidRequest(ErrorBody),
    #[error("upstream error: {}", .0.message)]
    Upstream(ErrorBody),
    #[error("unavailable: {}", .0.message)]
    Unavailable(ErrorBody),
    #[error("internal error: {}", .0.message)]
    Internal(ErrorBody),
}

impl PipeError {
    /// The caller-facing body of this error.
    pub fn body(&self) -> &ErrorBody {
        match self {
            PipeError::InvalidRequest(b)
            | PipeError::Upstream(b)
            | PipeError::Unavailable(b)
            | PipeError::Internal(b) => b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(key: &str, user: Option<&str>) -> RequestContext {
        RequestContext {
            key_name: key.into(),
            user_id: user.map(str::to_string),
            ..RequestContext::default()
        }
    }

    #[test]
    fn the_owner_is_a_fixed_length_digest_of_the_principal() {
        let a = ctx("owui", Some("user-a")).owner();
        assert_eq!(a.len(), OWNER_HEX_CHARS);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(a, ctx("owui", Some("user-a")).owner());
        assert_ne!(a, ctx("owui", Some("user-b")).owner());
        assert_ne!(a, ctx("other-key", Some("user-a")).owner());
        assert_ne!(ctx("owui", None).owner(), a);
        // A user id of any length still gives 32 characters, never the id itself.
        let long = ctx("owui", Some(&"u".repeat(500))).owner();
        assert_eq!(long.len(), OWNER_HEX_CHARS);
        assert!(!long.contains("uuu"));
    }
}

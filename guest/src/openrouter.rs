//! Where OpenRouter is and how the pipe introduces itself there: the connection settings group
//! (`BASE_URL`, the timeouts, whether the host holds a key) and the attribution headers sent on
//! every OpenRouter call. The key itself never enters the component.

use serde::Deserialize;

/// The project URL sent as `HTTP-Referer` when no override is set (OpenRouter app attribution).
pub const DEFAULT_REFERER: &str = "https://github.com/openwebui/responses-pipe";
/// The app title sent as `X-OpenRouter-Title`.
pub const APP_TITLE: &str = "Responses Pipe";

/// The connection settings (defaults: the settings table).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct OpenRouterSettings {
    pub base_url: String,
    /// Whether the host holds an OpenRouter key (the key itself never enters the guest). A fact
    /// the host adds to the document, not a setting: absent means no key.
    #[serde(default)]
    pub api_key_configured: bool,
    pub http_referer_override: String,
    pub http_connect_timeout_seconds: u64,
    pub http_sock_read_seconds: u64,
}

impl OpenRouterSettings {
    /// `BASE_URL` without a trailing slash, ready for `{base}/models`.
    pub fn base(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }

    /// `HTTP-Referer` value: the override when it is a full http(s) URL, else the project URL.
    pub fn referer(&self) -> &str {
        let o = self.http_referer_override.trim();
        if o.starts_with("https://") || o.starts_with("http://") {
            o
        } else {
            DEFAULT_REFERER
        }
    }

    /// Attribution headers sent on every OpenRouter call.
    pub fn attribution_headers(&self) -> Vec<(String, String)> {
        vec![
            ("HTTP-Referer".to_string(), self.referer().to_string()),
            ("X-OpenRouter-Title".to_string(), APP_TITLE.to_string()),
            (
                "X-OpenRouter-Categories".to_string(),
                "general-chat".to_string(),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referer_override_must_be_a_full_url() {
        let mut s = OpenRouterSettings {
            http_referer_override: "example.com".into(),
            ..OpenRouterSettings::default()
        };
        assert_eq!(s.referer(), DEFAULT_REFERER);
        s.http_referer_override = "https://example.com/app".into();
        assert_eq!(s.referer(), "https://example.com/app");
    }
}

//! Open WebUI UI events as JSON text, the payload of
//! `Event::OpenWebUiEvent`: status lines, citation sources and toast notifications. Also the two
//! URL helpers citations need: dropping the `utm_source=openai` tag some providers add to cited
//! links (textually, so the rest of the link stays exactly as the provider wrote it), and the
//! host name shown on a citation chip (read with the `url` crate). Pure: callers pass in
//! timestamps.

use serde_json::json;
use url::{ParseError, Url};

/// A `status` event: a line in the message's status history.
pub fn status(description: &str, done: bool, hidden: bool) -> String {
    json!({
        "type": "status",
        "data": { "description": description, "done": done, "hidden": hidden },
    })
    .to_string()
}

/// Open WebUI's web-search status: rendered as "Searched N sites" (N counted from `urls`), with
/// the query and the links in a collapsible list under the status line.
pub fn web_search_status(query: &str, urls: &[String]) -> String {
    json!({
        "type": "status",
        "data": {
            "action": "web_search",
            "description": "Searched {{count}} sites",
            "query": query,
            "urls": urls,
            "done": true,
        },
    })
    .to_string()
}

/// An embeds event: HTML Open WebUI shows in a sandboxed frame under the message. `persist`
/// picks the short type `embeds`, which Open WebUI also appends to the saved message; the long
/// `chat:message:embeds` only refreshes the live view, so a panel that is redrawn while it runs
/// is saved once, at its end.
pub fn embeds(html: &str, persist: bool) -> String {
    json!({
        "type": if persist { "embeds" } else { "chat:message:embeds" },
        "data": { "embeds": [html] },
    })
    .to_string()
}

/// `s` with the five HTML-special characters escaped, safe inside element text and quoted
/// attribute values (the panels and cards shown in Open WebUI).
pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A `source` event: one citation chip. The URL is cleaned with [`clean_citation_url`]; the chip
/// is named after the URL's host (or the title, when the URL has none); the document text is the
/// excerpt, or the title when there is no excerpt.
pub fn source(url: &str, title: &str, excerpt: &str, date_accessed_iso: &str) -> String {
    let url = clean_citation_url(url.trim());
    let host = host_of(&url);
    let name = if !host.is_empty() {
        host
    } else if !title.trim().is_empty() {
        title.trim().to_string()
    } else {
        url.clone()
    };
    let document = if excerpt.trim().is_empty() {
        title
    } else {
        excerpt
    };
    json!({
        "type": "source",
        "data": {
            "source": { "name": name, "url": url },
            "document": [document],
            "metadata": [{ "source": url, "date_accessed": date_accessed_iso }],
        },
    })
    .to_string()
}

/// How a `notification` toast is styled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotificationLevel {
    Info,
    Success,
    Warning,
    Error,
}

impl NotificationLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationLevel::Info => "info",
            NotificationLevel::Success => "success",
            NotificationLevel::Warning => "warning",
            NotificationLevel::Error => "error",
        }
    }
}

/// A `notification` event: a toast (not saved on the message).
pub fn notification(level: NotificationLevel, content: &str) -> String {
    json!({
        "type": "notification",
        "data": { "type": level.as_str(), "content": content },
    })
    .to_string()
}

/// The URL without a `utm_source=openai` query parameter; other parameters and the fragment are
/// kept in order, and a query left empty loses its `?`. A URL without that parameter is returned
/// unchanged.
pub fn clean_citation_url(url: &str) -> String {
    let (before_fragment, fragment) = match url.find('#') {
        Some(i) => url.split_at(i),
        None => (url, ""),
    };
    let Some((base, query)) = before_fragment.split_once('?') else {
        return url.to_string();
    };
    let params: Vec<&str> = query.split('&').collect();
    if !params.contains(&"utm_source=openai") {
        return url.to_string();
    }
    let kept: Vec<&str> = params
        .into_iter()
        .filter(|p| !p.is_empty() && *p != "utm_source=openai")
        .collect();
    if kept.is_empty() {
        format!("{base}{fragment}")
    } else {
        format!("{base}?{}{fragment}", kept.join("&"))
    }
}

/// The lower-cased host of a URL without `www.`, user info or port (`""` when there is none).
/// Accepts `scheme://host/…`, `//host/…` and a bare `host/…` (read as `http://host/…`); IPv6
/// literals keep their brackets, internationalised names are shown in Unicode. The `url` crate
/// parses the URL (WHATWG rules: the last `@` ends the user info); text it refuses has no host.
pub fn host_of(url: &str) -> String {
    let url = url.trim();
    let parsed = match Url::parse(url) {
        Ok(u) if u.has_host() => Some(u),
        // No authority (`localhost:8080/x`, `mailto:a@b`) or no scheme: read it as a bare host.
        Ok(_) | Err(ParseError::RelativeUrlWithoutBase) => {
            let bare = url.strip_prefix("//").unwrap_or(url);
            Url::parse(&format!("http://{bare}")).ok()
        }
        Err(_) => None,
    };
    let Some(host) = parsed.as_ref().and_then(Url::host_str) else {
        return String::new();
    };
    let host = host.trim_end_matches('.');
    let (unicode, _) = idna::domain_to_unicode(host);
    let host = unicode.to_lowercase();
    match host.strip_prefix("www.") {
        Some(bare) if !bare.is_empty() => bare.to_string(),
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn status_events_carry_description_done_and_hidden() {
        let v = parse(&status("Searching the web…", false, true));
        assert_eq!(
            v,
            json!({"type":"status","data":{"description":"Searching the web…","done":false,"hidden":true}})
        );
    }

    #[test]
    fn text_with_quotes_and_newlines_stays_valid_json() {
        let v = parse(&status("say \"hi\"\n\tand </script>", true, false));
        assert_eq!(v["data"]["description"], "say \"hi\"\n\tand </script>");
    }

    #[test]
    fn a_source_uses_the_host_as_name_and_the_excerpt_as_document() {
        let v = parse(&source(
            "https://www.Example.com/a?utm_source=openai",
            "Example page",
            "An excerpt.",
            "2025-01-02T03:04:05Z",
        ));
        assert_eq!(
            v,
            json!({"type":"source","data":{
                "source":{"name":"example.com","url":"https://www.Example.com/a"},
                "document":["An excerpt."],
                "metadata":[{"source":"https://www.Example.com/a","date_accessed":"2025-01-02T03:04:05Z"}]
            }})
        );
    }

    #[test]
    fn a_source_without_excerpt_shows_the_title_and_one_without_host_is_named_by_title() {
        let v = parse(&source("https://docs.rs/serde", "serde docs", " ", "t"));
        assert_eq!(v["data"]["document"], json!(["serde docs"]));
        assert_eq!(v["data"]["source"]["name"], "docs.rs");
        let v = parse(&source("", "Local note", "", "t"));
        assert_eq!(v["data"]["source"]["name"], "Local note");
    }

    #[test]
    fn notifications_carry_their_level_and_content() {
        let cases = [
            (NotificationLevel::Info, "info"),
            (NotificationLevel::Success, "success"),
            (NotificationLevel::Warning, "warning"),
            (NotificationLevel::Error, "error"),
        ];
        for (level, name) in cases {
            let v = parse(&notification(level, "Model switched"));
            assert_eq!(
                v,
                json!({"type":"notification","data":{"type":name,"content":"Model switched"}})
            );
        }
    }

    #[test]
    fn the_openai_utm_tag_is_removed_and_other_parameters_kept() {
        let cases = [
            ("https://a.com/p?utm_source=openai", "https://a.com/p"),
            (
                "https://a.com/p?x=1&utm_source=openai",
                "https://a.com/p?x=1",
            ),
            (
                "https://a.com/p?utm_source=openai&x=1&y=2",
                "https://a.com/p?x=1&y=2",
            ),
            (
                "https://a.com/p?x=1&utm_source=openai#sec",
                "https://a.com/p?x=1#sec",
            ),
            (
                "https://a.com/p?utm_source=openai#sec",
                "https://a.com/p#sec",
            ),
            (
                "https://a.com/p?utm_source=other",
                "https://a.com/p?utm_source=other",
            ),
            ("https://a.com/p?a=1&&b=2", "https://a.com/p?a=1&&b=2"),
            (
                "https://a.com/p#x?utm_source=openai",
                "https://a.com/p#x?utm_source=openai",
            ),
            ("https://a.com/p", "https://a.com/p"),
        ];
        for (input, expected) in cases {
            assert_eq!(clean_citation_url(input), expected, "{input}");
        }
    }

    #[test]
    fn host_extraction_handles_ports_user_info_ipv6_and_www() {
        let cases = [
            ("https://www.example.com/path", "example.com"),
            ("http://User:p@ss@Example.COM:8080/x", "example.com"),
            ("https://[2001:db8::1]:443/x", "[2001:db8::1]"),
            ("//cdn.example.org/lib.js", "cdn.example.org"),
            ("example.net/page?q=1", "example.net"),
            ("https://example.com.?x", "example.com"),
            ("https://sub.www.example.com", "sub.www.example.com"),
            ("https://www./", "www"),
            ("https://a.com#frag", "a.com"),
            ("", ""),
            ("https://", ""),
            ("https://[::1", ""),
            ("https://[2001:DB8:0::1]/", "[2001:db8::1]"),
            ("localhost:8080/x", "localhost"),
            ("https://www.Bücher.de/x", "bücher.de"),
            ("https://xn--bcher-kva.de", "bücher.de"),
            ("foo://Host.Example/x", "host.example"),
            ("https://exa mple.com/", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(host_of(input), expected, "{input}");
        }
    }
}

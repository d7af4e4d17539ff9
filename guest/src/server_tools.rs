//! OpenRouter's server-side tools as the caller sees them: a status line when
//! an item starts; when it is done, a closing status (Open WebUI's "Searched N sites" list for a
//! web search that returned sources, the page read, the advisor or sub-agent consulted) and, with
//! `SHOW_TOOL_CARDS`, Open WebUI's collapsible card with what went in and what came out. A failed
//! item gets a status naming the error and no card (failed outputs are not shown as
//! cards). Pure: the stream decides which caller gets what.

use crate::owui_events;
use serde_json::{Map, Value};

/// Longest result shown on a card, in characters (a fetched page can be very long).
const MAX_CARD_RESULT_CHARS: usize = 4000;

/// Longest query or task quoted in a status line, in characters.
const MAX_STATUS_QUOTE_CHARS: usize = 120;

/// The status line for a server-side tool item starting (OpenRouter's `openrouter:*` tools and
/// the OpenAI-style search items).
pub fn label(item_type: &str) -> Option<&'static str> {
    Some(match item_type.trim_start_matches("openrouter:") {
        "web_search" | "web_search_call" => "Searching the web…",
        "web_fetch" => "Reading a web page…",
        "datetime" => "Checking the date and time…",
        "advisor" => "Consulting an advisor model…",
        "subagent" => "Running a sub-agent…",
        "image_generation" | "image_generation_call" => "Generating an image…",
        "file_search_call" => "Searching files…",
        "search_models" => "Searching the model catalog…",
        "fusion" => "Asking the Fusion panel…",
        _ => return None,
    })
}

/// What a finished server-tool item shows the caller.
#[derive(Debug, Default, PartialEq)]
pub struct Finished {
    /// Open WebUI status events (JSON text), in order.
    pub statuses: Vec<String>,
    /// The `<details>` card to append to the answer, when cards are on and the call succeeded.
    pub card: Option<String>,
}

fn text<'a>(item: &'a Value, key: &str) -> &'a str {
    item.get(key).and_then(Value::as_str).unwrap_or("").trim()
}

fn quote(s: &str) -> String {
    let mut out: String = s.chars().take(MAX_STATUS_QUOTE_CHARS).collect();
    if s.chars().count() > MAX_STATUS_QUOTE_CHARS {
        out.push('…');
    }
    out
}

fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(MAX_CARD_RESULT_CHARS).collect();
    if s.chars().count() > MAX_CARD_RESULT_CHARS {
        out.push('…');
    }
    out
}

/// The item's fields named in `keys` that are present, as a JSON object text.
fn fields(item: &Value, keys: &[&str]) -> String {
    let picked: Map<String, Value> = keys
        .iter()
        .filter_map(|k| {
            item.get(*k)
                .filter(|v| !v.is_null())
                .map(|v| ((*k).to_string(), v.clone()))
        })
        .collect();
    Value::Object(picked).to_string()
}

/// The source URLs of a search action (`action.sources[].url`), in order, without repeats.
fn source_urls(action: Option<&Value>) -> Vec<String> {
    let mut urls: Vec<String> = Vec::new();
    let sources = action
        .and_then(|a| a.get("sources"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for source in sources {
        let url = source
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim();
        if url.is_empty() {
            continue;
        }
        let url = owui_events::clean_citation_url(url);
        if !urls.contains(&url) {
            urls.push(url);
        }
    }
    urls
}

/// What a `response.output_item.done` item of a server tool shows; `None` for other items.
/// `cards`: whether to build the card (Open WebUI caller with `SHOW_TOOL_CARDS`).
pub fn finished(item: &Value, cards: bool) -> Option<Finished> {
    let item_type = item.get("type").and_then(Value::as_str)?;
    let kind = item_type.trim_start_matches("openrouter:");
    if !matches!(
        kind,
        "web_search"
            | "web_search_call"
            | "web_fetch"
            | "datetime"
            | "advisor"
            | "subagent"
            | "file_search_call"
    ) {
        return None;
    }
    let mut out = Finished::default();
    let status = |line: &str| owui_events::status(line, true, false);
    let error = text(item, "error");
    if text(item, "status") == "failed" || !error.is_empty() {
        let what = label(item_type)
            .unwrap_or("A server tool")
            .trim_end_matches('…');
        let why = if error.is_empty() { "failed" } else { error };
        out.statuses
            .push(status(&format!("{what} did not work: {}", quote(why))));
        return Some(out);
    }
    let (arguments, result) = match kind {
        "web_search" | "web_search_call" => {
            let action = item.get("action");
            let field = |k: &str| {
                action
                    .and_then(|a| a.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .trim()
            };
            let urls = source_urls(action);
            let query = field("query");
            match field("type") {
                "open_page" => {
                    let url = field("url");
                    if !url.is_empty() {
                        out.statuses
                            .push(status(&format!("Opened {}", owui_events::host_of(url))));
                    }
                }
                "find_in_page" => {
                    let host = owui_events::host_of(field("url"));
                    let pattern = field("pattern");
                    out.statuses.push(status(&format!(
                        "Looked for “{}” in {}",
                        quote(pattern),
                        if host.is_empty() { "the page" } else { &host }
                    )));
                }
                _ if !urls.is_empty() => {
                    out.statuses
                        .push(owui_events::web_search_status(query, &urls));
                }
                _ if !query.is_empty() => {
                    out.statuses
                        .push(status(&format!("Searched the web for “{}”", quote(query))));
                }
                _ => {}
            }
            let arguments = action
                .map(|a| fields(a, &["query", "url", "pattern"]))
                .unwrap_or_else(|| "{}".into());
            let result = if urls.is_empty() {
                "no sources listed".to_string()
            } else {
                urls.join("\n")
            };
            (arguments, result)
        }
        "web_fetch" => {
            let url = text(item, "url");
            let host = owui_events::host_of(url);
            out.statuses.push(status(&format!(
                "Read {}",
                if host.is_empty() { "a web page" } else { &host }
            )));
            let title = text(item, "title");
            let content = text(item, "content");
            let result = match (title.is_empty(), content.is_empty()) {
                (false, false) => format!("{title}\n\n{content}"),
                (false, true) => title.to_string(),
                (true, _) => content.to_string(),
            };
            (fields(item, &["url"]), result)
        }
        "file_search_call" => {
            let queries: Vec<&str> = item
                .get("queries")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::trim)
                .filter(|q| !q.is_empty())
                .collect();
            out.statuses.push(status(&match queries.first() {
                Some(q) => format!("Searched files for “{}”", quote(q)),
                None => "Searched files".to_string(),
            }));
            let results: Vec<String> = item
                .get("results")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    [r.get("filename"), r.get("text")]
                        .into_iter()
                        .flatten()
                        .find_map(Value::as_str)
                        .map(str::to_string)
                })
                .collect();
            (fields(item, &["queries"]), results.join("\n"))
        }
        "datetime" => {
            let result = [text(item, "datetime"), text(item, "timezone")]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            (fields(item, &["timezone"]), result)
        }
        "advisor" => {
            let model = text(item, "model");
            out.statuses.push(status(&if model.is_empty() {
                "Consulted an advisor model".to_string()
            } else {
                format!("Consulted {model}")
            }));
            (
                fields(item, &["model", "prompt"]),
                text(item, "advice").to_string(),
            )
        }
        _ => {
            let task = [text(item, "task_name"), text(item, "name")]
                .into_iter()
                .find(|s| !s.is_empty())
                .unwrap_or("");
            out.statuses.push(status(&if task.is_empty() {
                "A sub-agent finished its task".to_string()
            } else {
                format!("Sub-agent finished “{}”", quote(task))
            }));
            (
                fields(item, &["name", "task_name", "task_description", "model"]),
                text(item, "outcome").to_string(),
            )
        }
    };
    if cards {
        let id = [text(item, "id"), text(item, "call_id")]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or(kind);
        out.card = Some(crate::tool_loop::details_card(
            id,
            item_type,
            &arguments,
            &clip(&result),
        ));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status_data(event: &str) -> Value {
        let v: Value = serde_json::from_str(event).unwrap();
        assert_eq!(v["type"], "status");
        v["data"].clone()
    }

    #[test]
    fn a_web_search_with_sources_is_open_webui_s_searched_n_sites_status() {
        let item = json!({"type": "openrouter:web_search", "id": "ws_1", "status": "completed",
            "action": {"type": "search", "query": "rust wasm", "sources": [
                {"type": "url", "url": "https://a.example/x?utm_source=openai"},
                {"type": "url", "url": "https://b.example/y"},
                {"type": "url", "url": "https://a.example/x"}]}});
        let done = finished(&item, false).unwrap();
        assert_eq!(done.statuses.len(), 1);
        let data = status_data(&done.statuses[0]);
        assert_eq!(data["action"], "web_search");
        assert_eq!(data["description"], "Searched {{count}} sites");
        assert_eq!(data["query"], "rust wasm");
        assert_eq!(
            data["urls"],
            json!(["https://a.example/x", "https://b.example/y"])
        );
        assert_eq!(done.card, None);
    }

    #[test]
    fn a_web_search_without_sources_names_its_query_and_page_actions_their_page() {
        let item = json!({"type": "web_search_call", "status": "completed",
            "action": {"type": "search", "query": "weather"}});
        let data = status_data(&finished(&item, false).unwrap().statuses[0]);
        assert_eq!(data["description"], "Searched the web for “weather”");
        let item = json!({"type": "web_search_call", "status": "completed",
            "action": {"type": "open_page", "url": "https://www.docs.rs/x"}});
        let data = status_data(&finished(&item, false).unwrap().statuses[0]);
        assert_eq!(data["description"], "Opened docs.rs");
        let item = json!({"type": "web_search_call", "status": "completed",
            "action": {"type": "find_in_page", "url": "https://docs.rs/x", "pattern": "Send"}});
        let data = status_data(&finished(&item, false).unwrap().statuses[0]);
        assert_eq!(data["description"], "Looked for “Send” in docs.rs");
    }

    #[test]
    fn cards_show_what_went_in_and_what_came_out() {
        let item = json!({"type": "openrouter:web_fetch", "id": "wf_1", "status": "completed",
            "url": "https://example.com/page", "title": "Example", "content": "Body \"quoted\"",
            "httpStatus": 200});
        let done = finished(&item, true).unwrap();
        let card = done.card.unwrap();
        assert!(
            card.contains("type=\"tool_calls\" done=\"true\" id=\"wf_1\""),
            "{card}"
        );
        assert!(card.contains("name=\"openrouter:web_fetch\""), "{card}");
        assert!(
            card.contains("arguments=\"{&quot;url&quot;:&quot;https://example.com/page&quot;}\""),
            "{card}"
        );
        assert!(
            card.contains("Example\\n\\nBody \\&quot;quoted\\&quot;"),
            "{card}"
        );
        assert_eq!(
            status_data(&done.statuses[0])["description"],
            "Read example.com"
        );

        let item = json!({"type": "openrouter:datetime", "id": "dt_1", "status": "completed",
            "datetime": "2026-03-12T14:30:00.000Z", "timezone": "UTC"});
        let done = finished(&item, true).unwrap();
        assert!(done.statuses.is_empty());
        assert!(done.card.unwrap().contains("2026-03-12T14:30:00.000Z UTC"));

        let item = json!({"type": "openrouter:advisor", "status": "completed",
            "model": "openai/gpt-5", "prompt": "check this", "advice": "looks fine"});
        let done = finished(&item, true).unwrap();
        assert_eq!(
            status_data(&done.statuses[0])["description"],
            "Consulted openai/gpt-5"
        );
        assert!(done.card.unwrap().contains("looks fine"));

        let item = json!({"type": "openrouter:subagent", "status": "completed",
            "task_name": "summarise", "outcome": "done it"});
        let done = finished(&item, true).unwrap();
        assert_eq!(
            status_data(&done.statuses[0])["description"],
            "Sub-agent finished “summarise”"
        );
        assert!(done.card.unwrap().contains("done it"));
    }

    #[test]
    fn a_file_search_names_its_query() {
        let item = json!({"type": "file_search_call", "id": "fs_1", "status": "completed",
            "queries": ["quarterly report", "revenue"],
            "results": [{"filename": "q3.pdf", "text": "…"}]});
        let done = finished(&item, true).unwrap();
        assert_eq!(
            status_data(&done.statuses[0])["description"],
            "Searched files for “quarterly report”"
        );
        assert!(done.card.unwrap().contains("q3.pdf"));
    }

    #[test]
    fn a_failed_item_is_a_status_with_its_error_and_never_a_card() {
        let item =
            json!({"type": "openrouter:advisor", "status": "failed", "error": "upstream 502"});
        let done = finished(&item, true).unwrap();
        assert_eq!(done.card, None);
        assert_eq!(
            status_data(&done.statuses[0])["description"],
            "Consulting an advisor model did not work: upstream 502"
        );
    }

    #[test]
    fn other_items_are_not_server_tools_and_long_results_are_clipped() {
        assert_eq!(finished(&json!({"type": "message"}), true), None);
        assert_eq!(finished(&json!({"type": "function_call"}), true), None);
        let item = json!({"type": "openrouter:web_fetch", "status": "completed",
            "url": "https://e.example", "content": "x".repeat(10_000)});
        let card = finished(&item, true).unwrap().card.unwrap();
        assert!(card.len() < 5_000, "{}", card.len());
        assert!(card.contains('…'));
    }
}

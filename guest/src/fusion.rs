//! OpenRouter Fusion as the caller sees it. A Fusion run (the
//! `openrouter:fusion` server tool, the `fusion` plugin, or the `openrouter/fusion` model) asks a
//! panel of models the same question, has an analyst model compare their answers, and lets the
//! outer model write the answer from that analysis. Fusion exists only on `/responses`, so such
//! requests are always sent there. While it runs, the `response.fusion_call.*` events become
//! status lines and a live HTML panel for Open WebUI: redrawn (live view only) as panel models
//! start, answer or fail and when the analysis arrives, and saved once on the message when the
//! run ends. Pure: the stream feeds events in and relays what comes out.

use crate::owui_events::{self, escape_html as escape};
use serde_json::{Map, Value};

/// Panel members tracked per run (OpenRouter caps the panel at 8).
const MAX_MEMBERS: usize = 16;

/// Characters of a member's answer kept for the panel.
const MAX_MEMBER_CHARS: usize = 3000;

/// Entries kept per analysis list, and characters per entry.
const MAX_ANALYSIS_ENTRIES: usize = 12;
const MAX_ANALYSIS_CHARS: usize = 400;

/// Whether a request runs Fusion: the `openrouter/fusion` model (slash or dotted form, with or
/// without a `~` alias prefix or a `:variant`), an `openrouter:fusion` tool, or an enabled
/// `fusion` plugin.
pub fn requested(model_id: &str, body: &Map<String, Value>) -> bool {
    let base = model_id.trim().trim_start_matches('~');
    let base = base.split(':').next().unwrap_or(base);
    if base == "openrouter/fusion" || base == "openrouter.fusion" {
        return true;
    }
    let has_tool = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|t| t.get("type").and_then(Value::as_str) == Some("openrouter:fusion"));
    let has_plugin = body
        .get("plugins")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|p| {
            p.get("id").and_then(Value::as_str) == Some("fusion")
                && p.get("enabled") != Some(&Value::Bool(false))
        });
    has_tool || has_plugin
}

#[derive(Clone, Debug, PartialEq)]
enum State {
    Answering,
    Answered,
    Failed(String),
}

#[derive(Clone, Debug)]
struct Member {
    model: String,
    state: State,
    text: String,
    text_chars: usize,
    reasoning_chars: usize,
}

impl Member {
    fn append(&mut self, delta: &str) {
        for c in delta.chars() {
            if self.text_chars < MAX_MEMBER_CHARS {
                self.text.push(c);
            }
            self.text_chars += 1;
        }
    }

    fn set_text(&mut self, text: &str) {
        self.text = text.chars().take(MAX_MEMBER_CHARS).collect();
        self.text_chars = text.chars().count();
    }
}

/// One Fusion run (one `openrouter:fusion` item), as far as its events have told.
#[derive(Clone, Debug, Default)]
pub struct Run {
    item_id: String,
    members: Vec<Member>,
    analyst: String,
    analysis: Option<Value>,
    finished: bool,
    saved: bool,
}

/// The Fusion runs of one response.
#[derive(Debug, Default)]
pub struct Runs {
    runs: Vec<Run>,
}

fn text_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("").trim()
}

fn status(line: &str, done: bool) -> String {
    owui_events::status(line, done, false)
}

impl Runs {
    fn run(&mut self, item_id: &str) -> &mut Run {
        let at = match self.runs.iter().position(|r| r.item_id == item_id) {
            Some(i) => i,
            None => {
                self.runs.push(Run {
                    item_id: item_id.to_string(),
                    ..Run::default()
                });
                self.runs.len() - 1
            }
        };
        &mut self.runs[at]
    }

    /// Feed one `response.fusion_call.*` event; the Open WebUI events (JSON text) it produces.
    pub fn feed(&mut self, kind: &str, event: &Value) -> Vec<String> {
        let Some(stage) = kind.strip_prefix("response.fusion_call.") else {
            return Vec::new();
        };
        let run = self.run(text_of(event, "item_id"));
        let model = text_of(event, "model");
        let mut out = Vec::new();
        let mut redraw = true;
        match stage {
            // "Asking the Fusion panel…" was shown when the item was added; only draw the panel.
            "in_progress" => {}
            "panel.added" => {
                let _ = run.member(model);
                out.push(status(&format!("Fusion: {model} is answering…"), false));
            }
            "panel.delta" => {
                if let Some(m) = run.member(model) {
                    m.append(text_of(event, "delta"));
                }
                redraw = false;
            }
            "panel.reasoning.delta" => {
                let n = text_of(event, "delta").chars().count();
                if let Some(m) = run.member(model) {
                    m.reasoning_chars += n;
                }
                redraw = false;
            }
            "panel.completed" => {
                if let Some(m) = run.member(model) {
                    m.state = State::Answered;
                    if let Some(content) = event.get("content").and_then(Value::as_str) {
                        m.set_text(content);
                    }
                }
                let (answered, total) = run.tally();
                out.push(status(
                    &format!("Fusion: {model} answered ({answered} of {total})"),
                    false,
                ));
            }
            "panel.failed" => {
                let error = text_of(event, "error");
                let code = event.get("status_code").and_then(Value::as_u64);
                let why = match code {
                    Some(c) => format!("{error} ({c})"),
                    None => error.to_string(),
                };
                if let Some(m) = run.member(model) {
                    m.state = State::Failed(why.clone());
                }
                out.push(status(&format!("Fusion: {model} failed: {why}"), false));
            }
            "analysis.in_progress" => {
                let analyst = [
                    text_of(event, "analyst_model"),
                    text_of(event, "judge_model"),
                ]
                .into_iter()
                .find(|s| !s.is_empty())
                .unwrap_or("the analyst model");
                run.analyst = analyst.to_string();
                out.push(status(
                    &format!("Fusion: {analyst} is comparing the answers…"),
                    false,
                ));
            }
            "analysis.completed" => {
                run.analysis = event.get("analysis").filter(|a| a.is_object()).cloned();
                out.push(status("Fusion: the analysis is ready", false));
            }
            "completed" => {
                run.finished = true;
                out.push(status("Fusion panel finished", true));
            }
            _ => redraw = false,
        }
        if redraw {
            let persist = run.finished && !run.saved;
            run.saved |= persist;
            out.push(owui_events::embeds(&run.html(), persist));
        }
        out
    }

    /// A finished `openrouter:fusion` output item: its panel answers, failures and analysis fill
    /// in what the events did not carry, a failed run gets a status with its reason, and the
    /// panel is saved if the events never ended it. The Open WebUI events it produces.
    pub fn item_done(&mut self, item: &Value) -> Vec<String> {
        let run = self.run(text_of(item, "id"));
        for r in item
            .get("responses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(m) = run.member(text_of(r, "model")) else {
                continue;
            };
            m.state = State::Answered;
            if let Some(content) = r.get("content").and_then(Value::as_str)
                && m.text.is_empty()
            {
                m.set_text(content);
            }
        }
        for f in item
            .get("failed_models")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(m) = run.member(text_of(f, "model"))
                && m.state != State::Answered
            {
                m.state = State::Failed(text_of(f, "error").to_string());
            }
        }
        if run.analysis.is_none() {
            run.analysis = item.get("analysis").filter(|a| a.is_object()).cloned();
        }
        let mut out = Vec::new();
        let failed = text_of(item, "status") == "failed" || !text_of(item, "error").is_empty();
        if failed {
            let why = [text_of(item, "error"), text_of(item, "failure_reason")]
                .into_iter()
                .find(|s| !s.is_empty())
                .unwrap_or("no analysis was produced");
            out.push(status(&format!("Fusion did not work: {why}"), true));
        }
        run.finished = true;
        if !run.saved && (!run.members.is_empty() || run.analysis.is_some()) {
            run.saved = true;
            out.push(owui_events::embeds(&run.html(), true));
        }
        out
    }
}

/// The web pages a finished `openrouter:fusion` item says the run retrieved, as citations.
pub fn sources(item: &Value) -> Vec<crate::types::Citation> {
    item.get("sources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let url = text_of(s, "url");
            (!url.is_empty()).then(|| crate::types::Citation {
                url: owui_events::clean_citation_url(url),
                title: text_of(s, "title").to_string(),
                content: String::new(),
            })
        })
        .collect()
}

impl Run {
    /// The member answering as `model`, added when new; `None` once the panel is full (further
    /// members are left out of the panel rather than grow it without bound).
    fn member(&mut self, model: &str) -> Option<&mut Member> {
        let model = if model.is_empty() {
            "unnamed model"
        } else {
            model
        };
        let at = match self.members.iter().position(|m| m.model == model) {
            Some(i) => i,
            None if self.members.len() >= MAX_MEMBERS => return None,
            None => {
                self.members.push(Member {
                    model: model.to_string(),
                    state: State::Answering,
                    text: String::new(),
                    text_chars: 0,
                    reasoning_chars: 0,
                });
                self.members.len() - 1
            }
        };
        self.members.get_mut(at)
    }

    /// (answered, all) panel members so far.
    fn tally(&self) -> (usize, usize) {
        let answered = self
            .members
            .iter()
            .filter(|m| m.state == State::Answered)
            .count();
        (answered, self.members.len())
    }

    /// The panel as a self-contained HTML page (no scripts), every model text escaped.
    pub fn html(&self) -> String {
        let mut h = String::from(
            "<!doctype html><html><head><meta charset=\"utf-8\"><style>\
             body{font-family:system-ui,sans-serif;font-size:14px;margin:0;padding:8px}\
             .m{border:1px solid #8884;border-radius:8px;padding:6px 10px;margin:6px 0}\
             .s{opacity:.7;font-size:12px}.f{color:#c33}pre{white-space:pre-wrap;margin:4px 0}\
             h3,h4{margin:6px 0}</style></head><body><h3>Fusion panel</h3>",
        );
        for m in &self.members {
            let state = match &m.state {
                State::Answering if m.reasoning_chars > 0 => "thinking…".to_string(),
                State::Answering => "answering…".to_string(),
                State::Answered => format!("answered, {} characters", m.text_chars),
                State::Failed(why) => format!("failed: {}", escape(why)),
            };
            let class = if matches!(m.state, State::Failed(_)) {
                "s f"
            } else {
                "s"
            };
            h.push_str(&format!(
                "<div class=\"m\"><details><summary><b>{}</b> <span class=\"{class}\">{state}</span></summary><pre>{}{}</pre></details></div>",
                escape(&m.model),
                escape(&m.text),
                if m.text_chars > MAX_MEMBER_CHARS { "…" } else { "" },
            ));
        }
        if let Some(a) = &self.analysis {
            let by = if self.analyst.is_empty() {
                String::new()
            } else {
                format!(" by {}", escape(&self.analyst))
            };
            h.push_str(&format!("<h4>Analysis{by}</h4>"));
            list(&mut h, "Consensus", a.get("consensus"), |v| {
                v.as_str().map(str::to_string)
            });
            list(&mut h, "Contradictions", a.get("contradictions"), |v| {
                let stances: Vec<String> = v
                    .get("stances")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|s| format!("{}: {}", text_of(s, "model"), text_of(s, "stance")))
                    .collect();
                Some(format!("{} — {}", text_of(v, "topic"), stances.join("; ")))
            });
            list(&mut h, "Covered by some", a.get("partial_coverage"), |v| {
                let models: Vec<&str> = v
                    .get("models")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                Some(format!("{} ({})", text_of(v, "point"), models.join(", ")))
            });
            list(&mut h, "Unique insights", a.get("unique_insights"), |v| {
                Some(format!(
                    "{}: {}",
                    text_of(v, "model"),
                    text_of(v, "insight")
                ))
            });
            list(&mut h, "Blind spots", a.get("blind_spots"), |v| {
                v.as_str().map(str::to_string)
            });
        }
        h.push_str("</body></html>");
        h
    }
}

/// Append a titled list of an analysis array's entries (bounded, escaped); nothing when empty.
fn list(
    h: &mut String,
    title: &str,
    items: Option<&Value>,
    show: impl Fn(&Value) -> Option<String>,
) {
    let entries: Vec<String> = items
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(show)
        .filter(|s| !s.trim().is_empty())
        .take(MAX_ANALYSIS_ENTRIES)
        .collect();
    if entries.is_empty() {
        return;
    }
    h.push_str(&format!("<div><b>{title}</b><ul>"));
    for e in entries {
        let clipped: String = e.chars().take(MAX_ANALYSIS_CHARS).collect();
        h.push_str(&format!("<li>{}</li>", escape(&clipped)));
    }
    h.push_str("</ul></div>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(events: &[String]) -> Vec<Value> {
        events
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect()
    }

    fn descriptions(events: &[Value]) -> Vec<String> {
        events
            .iter()
            .filter(|e| e["type"] == "status")
            .map(|e| e["data"]["description"].as_str().unwrap().to_string())
            .collect()
    }

    fn ev(kind: &str, fields: Value) -> (String, Value) {
        let mut v = fields;
        v["type"] = json!(kind);
        v["item_id"] = json!("st_fusion_1");
        (kind.to_string(), v)
    }

    #[test]
    fn fusion_is_recognised_by_model_tool_or_enabled_plugin() {
        let empty = Map::new();
        assert!(requested("openrouter/fusion", &empty));
        assert!(requested("openrouter.fusion", &empty));
        assert!(requested("~openrouter/fusion:nitro", &empty));
        assert!(!requested("openrouter/auto", &empty));
        let body = |v: Value| v.as_object().unwrap().clone();
        assert!(requested(
            "a/b",
            &body(json!({"tools": [{"type": "openrouter:fusion"}]}))
        ));
        assert!(requested(
            "a/b",
            &body(json!({"plugins": [{"id": "fusion"}]}))
        ));
        assert!(!requested(
            "a/b",
            &body(json!({"plugins": [{"id": "fusion", "enabled": false}]}))
        ));
        assert!(!requested(
            "a/b",
            &body(json!({"tools": [{"type": "openrouter:web_search"}]}))
        ));
    }

    #[test]
    fn a_run_is_narrated_redrawn_live_and_saved_once_at_its_end() {
        let mut runs = Runs::default();
        let script = [
            ev("response.fusion_call.in_progress", json!({})),
            ev(
                "response.fusion_call.panel.added",
                json!({"model": "openai/gpt-5"}),
            ),
            ev("response.fusion_call.panel.added", json!({"model": "x/y"})),
            ev(
                "response.fusion_call.panel.delta",
                json!({"model": "openai/gpt-5", "delta": "Carbon <taxes>"}),
            ),
            ev(
                "response.fusion_call.panel.reasoning.delta",
                json!({"model": "openai/gpt-5", "delta": "hmm"}),
            ),
            ev(
                "response.fusion_call.panel.completed",
                json!({"model": "openai/gpt-5", "content": "Carbon <taxes> work"}),
            ),
            ev(
                "response.fusion_call.panel.failed",
                json!({"model": "x/y", "error": "Upstream provider error", "status_code": 502}),
            ),
            ev(
                "response.fusion_call.analysis.in_progress",
                json!({"analyst_model": "a/judge", "judge_model": "a/judge"}),
            ),
            ev(
                "response.fusion_call.analysis.completed",
                json!({"analysis": {
                "consensus": ["taxes help"], "contradictions": [{"topic": "speed", "stances": [{"model": "openai/gpt-5", "stance": "fast"}]}],
                "partial_coverage": [], "unique_insights": [{"model": "openai/gpt-5", "insight": "border adjustments"}], "blind_spots": ["politics"]}}),
            ),
            ev("response.fusion_call.completed", json!({})),
        ];
        let mut all = Vec::new();
        for (kind, event) in &script {
            all.extend(parsed(&runs.feed(kind, event)));
        }
        assert_eq!(
            descriptions(&all),
            [
                "Fusion: openai/gpt-5 is answering…",
                "Fusion: x/y is answering…",
                "Fusion: openai/gpt-5 answered (1 of 2)",
                "Fusion: x/y failed: Upstream provider error (502)",
                "Fusion: a/judge is comparing the answers…",
                "Fusion: the analysis is ready",
                "Fusion panel finished",
            ]
        );
        let embeds: Vec<&Value> = all.iter().filter(|e| e["type"] != "status").collect();
        // Redrawn at every step but the deltas; saved (short type) only at the end.
        assert_eq!(embeds.len(), 8);
        assert!(
            embeds[..7]
                .iter()
                .all(|e| e["type"] == "chat:message:embeds")
        );
        assert_eq!(embeds[7]["type"], "embeds");
        let html = embeds[7]["data"]["embeds"][0].as_str().unwrap();
        assert!(html.contains("Carbon &lt;taxes&gt; work"), "{html}");
        assert!(!html.contains("<taxes>"));
        assert!(html.contains("failed: Upstream provider error (502)"));
        assert!(html.contains("Analysis by a/judge"));
        assert!(html.contains("speed — openai/gpt-5: fast"));
        assert!(html.contains("border adjustments"));
        assert!(html.contains("politics"));
        assert!(!html.contains("<script"));
        // The finished item does not save the panel a second time.
        let item = json!({"type": "openrouter:fusion", "id": "st_fusion_1", "status": "completed"});
        assert!(runs.item_done(&item).is_empty());
    }

    #[test]
    fn a_finished_item_alone_fills_in_and_saves_the_panel_and_reports_failure() {
        let mut runs = Runs::default();
        let item = json!({"type": "openrouter:fusion", "id": "st_2", "status": "failed",
            "failure_reason": "all_panels_failed",
            "failed_models": [{"model": "a/b", "error": "rate limited", "status_code": 429}],
            "sources": [{"url": "https://e.example/a?utm_source=openai", "title": "A"}]});
        let out = parsed(&runs.item_done(&item));
        assert_eq!(
            descriptions(&out),
            ["Fusion did not work: all_panels_failed"]
        );
        assert_eq!(out[1]["type"], "embeds");
        assert!(
            out[1]["data"]["embeds"][0]
                .as_str()
                .unwrap()
                .contains("failed: rate limited")
        );
        let cited = sources(&item);
        assert_eq!(cited.len(), 1);
        assert_eq!(cited[0].url, "https://e.example/a");
        assert_eq!(cited[0].title, "A");
    }

    #[test]
    fn member_text_is_bounded() {
        let mut runs = Runs::default();
        let (k, e) = ev(
            "response.fusion_call.panel.delta",
            json!({"model": "m", "delta": "x".repeat(10_000)}),
        );
        runs.feed(&k, &e);
        let (k, e) = ev("response.fusion_call.completed", json!({}));
        let out = parsed(&runs.feed(&k, &e));
        let html = out[1]["data"]["embeds"][0].as_str().unwrap();
        assert!(html.len() < MAX_MEMBER_CHARS + 2_000, "{}", html.len());
        assert!(html.contains('…'));
    }
}

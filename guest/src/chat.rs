//! One chat completion, end to end: validate the body, find the model, build the Responses
//! request, call `/responses` with `stream:true`, and relay the SSE stream as caller events.
//! Failures before any visible output are returned as `PipeError` (the host answers with an HTTP
//! error status); failures after output become an in-stream `Event::Error`.

use crate::caps::{
    BodyStream, Emit, Env, HttpRequest, Kv, Method, TransportError, Upstream, read_body,
};
use crate::catalog::Catalog;
use crate::errors;
use crate::settings::Settings;
use crate::stream::{ResponsesStream, Step};
use crate::translate;
use crate::types::{ErrorBody, Event, FinishReason, PipeError, RequestContext};
use eventsource_stream::EventStream;
use futures::StreamExt;

/// Largest upstream error body we read.
const MAX_ERROR_BODY_BYTES: usize = 1 << 20;

/// The capabilities one chat needs.
pub struct Pipe<'a, U, K, E, V> {
    pub settings: &'a Settings,
    pub upstream: &'a U,
    pub kv: &'a K,
    pub emit: &'a mut E,
    pub env: &'a V,
}

impl<U: Upstream, K: Kv, E: Emit, V: Env> Pipe<'_, U, K, E, V> {
    fn new_error_id(&self) -> String {
        errors::error_id(self.env.random_u64())
    }

    /// Serve one chat completion request.
    pub async fn chat(&mut self, _ctx: &RequestContext, body: &[u8]) -> Result<(), PipeError> {
        let request = translate::parse_chat_body(body).map_err(|e| {
            PipeError::InvalidRequest(errors::body(
                &self.new_error_id(),
                400,
                "invalid_request_error",
                Some("invalid_body"),
                &e.0,
            ))
        })?;
        let catalog = Catalog {
            settings: self.settings,
            upstream: self.upstream,
            kv: self.kv,
            env: self.env,
        };
        let model = catalog.find(&request.model).await?;
        let payload = translate::to_responses_request(&request, &model);
        let bytes = serde_json::to_vec(&payload).map_err(|e| {
            PipeError::Internal(errors::body(
                &self.new_error_id(),
                500,
                "internal_error",
                None,
                &e.to_string(),
            ))
        })?;
        let mut headers = self.settings.attribution_headers();
        headers.push(("Content-Type".into(), "application/json".into()));
        headers.push(("Accept".into(), "text/event-stream".into()));
        let response = self
            .upstream
            .send(HttpRequest {
                method: Method::Post,
                url: format!("{}/responses", self.settings.base()),
                headers,
                body: Some(bytes),
            })
            .await
            .map_err(|e| {
                PipeError::Upstream(errors::from_transport(
                    &self.new_error_id(),
                    "reach OpenRouter",
                    &e,
                ))
            })?;
        let mut response = response;
        if response.status >= 400 {
            let retry_after = response.header("retry-after").map(str::to_string);
            let body = read_body(&mut response.body, MAX_ERROR_BODY_BYTES)
                .await
                .unwrap_or_default();
            return Err(PipeError::Upstream(errors::from_status(
                &self.new_error_id(),
                response.status,
                retry_after.as_deref(),
                &body,
            )));
        }
        let content_type = response
            .header("content-type")
            .unwrap_or("")
            .to_ascii_lowercase();
        if !content_type.starts_with("text/event-stream") {
            let shown: String = content_type.chars().take(80).collect();
            return Err(PipeError::Upstream(errors::body(
                &self.new_error_id(),
                502,
                "upstream_error",
                Some("unexpected_content_type"),
                &format!("OpenRouter answered with `{shown}` instead of an event stream"),
            )));
        }
        self.relay(response.body).await
    }

    /// Relay the SSE body as events until a terminal event, a failure, or the end.
    async fn relay(&mut self, body: U::Body) -> Result<(), PipeError> {
        let chunks = futures::stream::unfold(body, |mut body| async move {
            body.next_chunk().await.map(|chunk| (chunk, body))
        });
        let mut events = EventStream::new(Box::pin(chunks));
        let mut state = ResponsesStream::default();
        let env = self.env;
        let mut caller_gone = false;
        loop {
            let Some(next) = events.next().await else {
                let err = errors::body(
                    &errors::error_id(env.random_u64()),
                    502,
                    "upstream_error",
                    Some("stream_interrupted"),
                    "The answer was cut off: the upstream stream ended before the response completed",
                );
                return self.fail(&state, err);
            };
            let data = match next {
                Ok(event) => event.data,
                Err(eventsource_stream::EventStreamError::Transport(e)) => {
                    let err = interrupted(&errors::error_id(env.random_u64()), &e);
                    return self.fail(&state, err);
                }
                Err(_) => {
                    // Not UTF-8 or not SSE: count it like a malformed payload and go on.
                    state.malformed += 1;
                    continue;
                }
            };
            let emit = &mut *self.emit;
            let step = state.feed(
                &data,
                &mut |event| {
                    let ok = emit.send(event).is_ok();
                    caller_gone |= !ok;
                    ok
                },
                &mut || errors::error_id(env.random_u64()),
            );
            if caller_gone {
                // Nobody is listening: stop reading so the upstream request is dropped.
                return Ok(());
            }
            match step {
                Step::Continue => {}
                Step::Completed { finish, usage } => {
                    if let Some(usage) = usage {
                        let _ = self.emit.send(Event::Usage(usage));
                    }
                    let _ = self.emit.send(Event::Finish(finish));
                    return Ok(());
                }
                Step::Failed(err) => return self.fail(&state, err),
            }
        }
    }

    /// Before visible output: an error result (HTTP status). After: an in-stream error.
    fn fail(&mut self, state: &ResponsesStream, err: ErrorBody) -> Result<(), PipeError> {
        if state.visible_output {
            let _ = self.emit.send(Event::Error(err));
            let _ = self.emit.send(Event::Finish(FinishReason::Error));
            Ok(())
        } else {
            Err(PipeError::Upstream(err))
        }
    }

    /// The model list in OpenAI form.
    pub async fn models(&self) -> Result<String, PipeError> {
        let catalog = Catalog {
            settings: self.settings,
            upstream: self.upstream,
            kv: self.kv,
            env: self.env,
        };
        let models = catalog.list().await?;
        Ok(crate::catalog::to_openai_list(&models).to_string())
    }
}

fn interrupted(error_id: &str, e: &TransportError) -> ErrorBody {
    errors::body(
        error_id,
        502,
        "upstream_error",
        Some("stream_interrupted"),
        &format!("The answer was cut off: the upstream stream failed ({e})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::TransportError;
    use crate::testing::{Canned, FixedEnv, MemKv, ScriptedUpstream, VecEmit, block_on};
    use crate::types::Usage;

    const MODELS: &str = r#"{"data":[{"id":"fake/echo","supported_parameters":["reasoning"]}]}"#;
    const BODY: &[u8] =
        br#"{"model":"fake/echo","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

    fn run(up: &ScriptedUpstream) -> (Result<(), PipeError>, Vec<Event>) {
        let s = Settings {
            api_key_configured: true,
            ..Settings::default()
        };
        let (kv, env) = (MemKv::default(), FixedEnv::default());
        let mut emit = VecEmit::default();
        let mut pipe = Pipe {
            settings: &s,
            upstream: up,
            kv: &kv,
            emit: &mut emit,
            env: &env,
        };
        let r = block_on(pipe.chat(&RequestContext::default(), BODY));
        (r, emit.events)
    }

    #[test]
    fn a_streamed_answer_ends_with_usage_and_finish() {
        let up = ScriptedUpstream::default()
            .on("/models", Ok(Canned::json(200, MODELS)))
            .on(
                "/responses",
                Ok(Canned::sse(&[
                    ": OPENROUTER PROCESSING\n\n",
                    "data: {\"type\":\"response.output_text.delta\",\"delta\":\"he\"}\n\n",
                    "data: {\"type\":\"response.output_text.delta\",",
                    "\"delta\":\"llo\"}\n\ndata: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",\"usage\":{\"input_tokens\":1,\"output_tokens\":2,\"total_tokens\":3,\"cost\":0.5}}}\n\n",
                ])),
            );
        let (r, events) = run(&up);
        r.unwrap();
        assert_eq!(events[0], Event::TextDelta("he".into()));
        assert_eq!(events[1], Event::TextDelta("llo".into()));
        assert!(
            matches!(&events[2], Event::Usage(Usage { total_tokens: 3, cost_usd: Some(c), .. }) if *c == 0.5)
        );
        assert_eq!(events[3], Event::Finish(FinishReason::Stop));
        let sent = up.requests.borrow();
        let req = sent.iter().find(|r| r.url.ends_with("/responses")).unwrap();
        let body: serde_json::Value = serde_json::from_slice(req.body.as_ref().unwrap()).unwrap();
        assert_eq!(body["stream"], true);
        assert!(req.headers.iter().any(|(k, _)| k == "HTTP-Referer"));
        assert!(
            !req.headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("authorization")),
            "the key is the host's job"
        );
    }

    #[test]
    fn errors_before_output_are_results_and_after_output_are_events() {
        let up = ScriptedUpstream::default()
            .on("/models", Ok(Canned::json(200, MODELS)))
            .on(
                "/responses",
                Ok(Canned {
                    headers: vec![("retry-after".into(), "7".into())],
                    ..Canned::json(429, r#"{"error":{"code":429,"message":"slow"}}"#)
                }),
            );
        let (r, events) = run(&up);
        let err = r.unwrap_err();
        assert_eq!(err.body().http_status, 429);
        assert_eq!(err.body().retry_after_seconds, Some(7));
        assert!(events.is_empty());

        let up = ScriptedUpstream::default()
            .on("/models", Ok(Canned::json(200, MODELS)))
            .on(
                "/responses",
                Ok(Canned {
                    chunks: vec![
                        Ok(b"data: {\"type\":\"response.output_text.delta\",\"delta\":\"par\"}\n\n".to_vec()),
                        Err(TransportError::Protocol("connection reset".into())),
                    ],
                    ..Canned::sse(&[])
                }),
            );
        let (r, events) = run(&up);
        r.unwrap();
        assert_eq!(events[0], Event::TextDelta("par".into()));
        assert!(
            matches!(&events[1], Event::Error(e) if e.code.as_deref() == Some("stream_interrupted"))
        );
        assert_eq!(events[2], Event::Finish(FinishReason::Error));
    }

    #[test]
    fn a_stream_without_a_terminal_event_is_an_error() {
        let up = ScriptedUpstream::default()
            .on("/models", Ok(Canned::json(200, MODELS)))
            .on(
                "/responses",
                Ok(Canned::sse(&[
                    "data: {\"type\":\"response.created\",\"response\":{}}\n\n",
                ])),
            );
        let (r, _) = run(&up);
        assert_eq!(
            r.unwrap_err().body().code.as_deref(),
            Some("stream_interrupted")
        );
    }

    #[test]
    fn a_non_sse_success_is_refused_clearly() {
        let up = ScriptedUpstream::default()
            .on("/models", Ok(Canned::json(200, MODELS)))
            .on(
                "/responses",
                Ok(Canned {
                    headers: vec![("content-type".into(), "text/html".into())],
                    ..Canned::json(200, "<html>")
                }),
            );
        let (r, _) = run(&up);
        assert_eq!(
            r.unwrap_err().body().code.as_deref(),
            Some("unexpected_content_type")
        );
    }

    #[test]
    fn an_unknown_model_is_a_404_before_any_upstream_chat_call() {
        let up = ScriptedUpstream::default().on("/models", Ok(Canned::json(200, MODELS)));
        let s = Settings {
            api_key_configured: true,
            ..Settings::default()
        };
        let (kv, env) = (MemKv::default(), FixedEnv::default());
        let mut emit = VecEmit::default();
        let mut pipe = Pipe {
            settings: &s,
            upstream: &up,
            kv: &kv,
            emit: &mut emit,
            env: &env,
        };
        let body = br#"{"model":"nope/x","messages":[{"role":"user","content":"hi"}]}"#;
        let err = block_on(pipe.chat(&RequestContext::default(), body)).unwrap_err();
        assert_eq!(err.body().http_status, 404);
        assert_eq!(up.count("/responses"), 0);
    }
}

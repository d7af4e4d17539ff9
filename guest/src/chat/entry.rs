//! What happens to a chat before the first upstream call: the body parsed, housekeeping tasks
//! told apart, the caller's identity, the auth-failure window, stored artifacts replayed, the
//! model found in the catalog, the endpoint chosen, the user's request breaker checked, and the
//! request built with the host's tools offered. Each refusal is a `Failure` for the table.

use super::Pipe;
use super::endpoint_choice;
use super::failure::Failure;
use super::request_breaker::breaker_user;
use super::tasks::task_name;
use crate::artifacts::replay::Replayed;
use crate::auth_window;
use crate::caps::{Emit, Env, Kv, Tools, Upstream};
use crate::catalog::Catalog;
use crate::chat_body::{self, ChatRequest};
use crate::endpoint::Endpoint;
use crate::errors;
use crate::model::ModelInfo;
use crate::request::{self, Built, Identity};
use crate::tool_loop::{self, ToolSet};
use crate::types::RequestContext;
use serde_json::Value;

/// What a chat turned out to be.
pub(super) enum Entry {
    /// A housekeeping task, answered on its own path.
    Task { request: ChatRequest, task: String },
    /// A chat admitted to OpenRouter, and its first request.
    Chat(Box<Admitted>, Outbound),
}

/// What the entry established for the whole answer.
pub(super) struct Admitted {
    pub request: ChatRequest,
    /// The artifacts replayed into the conversation.
    pub replayed: Replayed,
    pub model: ModelInfo,
    pub identity: Identity,
    /// Fusion is pinned to `/responses`.
    pub fusion: bool,
    /// Whose request breaker the request counts for.
    pub user: String,
    /// The failures that breaker held when the request came in.
    pub recent_failures: usize,
}

/// What is sent upstream: the endpoint, the body built for it, the host tools offered in it.
pub(super) struct Outbound {
    pub endpoint: Endpoint,
    pub built: Built,
    pub set: ToolSet,
}

/// Who is asking, as the host vouched for it. Open WebUI forwards no session id to model
/// connections, so there is none to send.
pub(super) fn identity_of(ctx: &RequestContext) -> Identity {
    Identity {
        user_id: ctx.user_id.clone(),
        user_email: ctx.user_email.clone(),
        user_name: ctx.user_name.clone(),
        chat_id: ctx.chat_id.clone(),
        message_id: ctx.message_id.clone(),
        session_id: None,
        cache_session_id: ctx.cache_session_id.clone(),
    }
}

impl<U: Upstream, K: Kv, E: Emit, V: Env> Pipe<'_, U, K, E, V> {
    /// Everything before the first upstream call of a chat.
    pub(super) async fn enter<T: Tools>(
        &mut self,
        ctx: &RequestContext,
        body: &[u8],
        tools: &T,
    ) -> Result<Entry, Failure> {
        let mut request =
            chat_body::parse_chat_body(body).map_err(|e| Failure::InvalidBody(e.0))?;
        if let Some(task) = task_name(ctx, &request) {
            return Ok(Entry::Task { request, task });
        }
        if let Some(refusal) = auth_window::open(self.kv, &ctx.principal(), self.env.now_ms()) {
            return Err(Failure::AuthWindow {
                requested_model: request.model,
                seconds_left: refusal.seconds_left(self.env.now_ms()),
                detail: refusal.detail,
            });
        }
        let replayed = self.replay_artifacts(ctx, &mut request);
        let model = self
            .catalog()
            .find(&request.model, self.zdr_requested(&request))
            .await
            .map_err(|error| Failure::Catalog {
                error: Box::new(error),
                requested_model: request.model.clone(),
            })?;
        let fusion = crate::fusion::requested(&model.id, &request.body);
        let endpoint = endpoint_choice::choose(
            &self.settings.endpoint,
            &model.id,
            request.body.contains_key("preset") || model.id.contains(":preset/"),
            fusion,
        )?;
        let user = breaker_user(ctx);
        let breaker = self.request_breaker(&user);
        let recent_failures = breaker.failure_count(self.env.now_ms());
        if breaker.opens_at(recent_failures) {
            return Err(Failure::BreakerOpen);
        }
        let admitted = Admitted {
            request,
            replayed,
            model,
            identity: identity_of(ctx),
            fusion,
            user,
            recent_failures,
        };
        let mut built = self.build(endpoint, &admitted)?;
        for notice in std::mem::take(&mut built.notices) {
            self.status(ctx, &notice, false);
        }
        let set = self.offer_tools(endpoint, &admitted.model, tools, &mut built);
        Ok(Entry::Chat(
            Box::new(admitted),
            Outbound {
                endpoint,
                built,
                set,
            },
        ))
    }

    /// The request for `endpoint`, with the host's tools offered in it.
    pub(super) fn outbound<T: Tools>(
        &self,
        endpoint: Endpoint,
        admitted: &Admitted,
        tools: &T,
    ) -> Result<Outbound, Failure> {
        let mut built = self.build(endpoint, admitted)?;
        let set = self.offer_tools(endpoint, &admitted.model, tools, &mut built);
        Ok(Outbound {
            endpoint,
            built,
            set,
        })
    }

    /// The model catalog, over this chat's capabilities.
    pub(super) fn catalog(&self) -> Catalog<'_, U, K, V> {
        Catalog {
            settings: &self.settings.catalog,
            openrouter: &self.settings.openrouter,
            upstream: self.upstream,
            kv: self.kv,
            env: self.env,
        }
    }

    /// Whether this request asks for ZDR providers (`REQUEST_ZDR`, or a per-chat `zdr` when
    /// `ALLOW_USER_ZDR_OVERRIDE` lets it).
    pub(super) fn zdr_requested(&self, request: &ChatRequest) -> bool {
        self.settings.request.allow_user_zdr_override
            && (self.settings.request.request_zdr
                || request.body.get("zdr") == Some(&Value::Bool(true)))
    }

    /// OpenRouter refused this caller's key (HTTP 401, saying `body`): open the caller's
    /// auth-failure window.
    pub(super) fn remember_key_refusal(&self, ctx: &RequestContext, body: &[u8]) {
        let said = errors::parse_openrouter_error(body).message;
        auth_window::record(
            self.kv,
            &ctx.principal(),
            self.env.now_ms(),
            said.as_deref().unwrap_or(""),
        );
    }

    /// The chat request rendered for `endpoint`.
    fn build(&self, endpoint: Endpoint, admitted: &Admitted) -> Result<Built, Failure> {
        let (request, model, identity) = (&admitted.request, &admitted.model, &admitted.identity);
        let built = match endpoint {
            Endpoint::Responses => request::build_responses_request(
                request,
                model,
                &self.settings.request,
                identity,
                false,
            ),
            Endpoint::ChatCompletions => request::build_chat_completions_request(
                request,
                model,
                &self.settings.request,
                identity,
                false,
            ),
        };
        built.map_err(|e| Failure::InvalidBody(e.0))
    }

    /// Pipeline mode: offer the host's tools in a freshly built body.
    fn offer_tools<T: Tools>(
        &self,
        endpoint: Endpoint,
        model: &ModelInfo,
        tools: &T,
        built: &mut Built,
    ) -> ToolSet {
        let t = &self.settings.tools;
        if !t.pipeline() || !tool_loop::model_takes_tools(model) {
            return ToolSet::default();
        }
        let env = self.env;
        tool_loop::offer_host_tools(
            t,
            model,
            tools.available(),
            endpoint,
            &mut built.body,
            &mut |line| env.log(line),
        )
    }
}

//! Sending a built body to OpenRouter: the POST itself, and for a turn's event stream the
//! retries of transport failures that cannot have reached the model (connect, timeout,
//! protocol), waiting by the turn's backoff.

use super::Pipe;
use super::backoff::Backoff;
use crate::caps::{Emit, Env, HttpRequest, HttpResponse, Kv, Method, TransportError, Upstream};
use crate::endpoint::Endpoint;
use crate::request::Built;

/// Whether a transport failure may be retried: the request cannot have reached the model.
fn retryable(e: &TransportError) -> bool {
    matches!(
        e,
        TransportError::Connect(_) | TransportError::Timeout(_) | TransportError::Protocol(_)
    )
}

impl<U: Upstream, K: Kv, E: Emit, V: Env> Pipe<'_, U, K, E, V> {
    /// POST a built body for an event stream, retrying retryable transport failures while
    /// `backoff` allows.
    pub(super) async fn send(
        &self,
        endpoint: Endpoint,
        built: &Built,
        backoff: &mut Backoff,
    ) -> Result<HttpResponse<U::Body>, TransportError> {
        loop {
            let sent = self.post(endpoint, built, "text/event-stream").await;
            if let Err(e) = &sent
                && retryable(e)
                && backoff.wait(self.env).await
            {
                continue;
            }
            return sent;
        }
    }

    /// POST a built body to an endpoint, asking for `accept` (SSE, or JSON for tasks).
    pub(super) async fn post(
        &self,
        endpoint: Endpoint,
        built: &Built,
        accept: &str,
    ) -> Result<HttpResponse<U::Body>, TransportError> {
        let bytes =
            serde_json::to_vec(&built.body).map_err(|e| TransportError::Protocol(e.to_string()))?;
        let mut headers = self.settings.openrouter.attribution_headers();
        headers.push(("Content-Type".into(), "application/json".into()));
        headers.push(("Accept".into(), accept.into()));
        headers.extend(built.headers.iter().cloned());
        self.upstream
            .send(HttpRequest {
                method: Method::Post,
                url: format!("{}{}", self.settings.openrouter.base(), endpoint.path()),
                headers,
                body: Some(bytes),
            })
            .await
    }
}

//! The first enforcement layer of the egress gate: wasmtime's `wasi:http/outgoing-handler.handle`
//! is shadowed in the linker by one that judges the request's scheme, authority and path with the
//! egress policy before anything else happens, so a refused request reaches the component
//! precisely as `HttpRequestDenied` (or `HttpRequestUriInvalid`) and never gets as far as the
//! hooks or the client, which judge again (defence in depth).

use std::sync::Arc;

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::outgoing_handler;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::types::{HostFutureIncomingResponse, HostOutgoingRequest};

use super::policy::{Denial, EgressPolicy, scheme_is_https};
use super::refusal::REFUSED_COUNTER;
use crate::metrics::Metrics;

/// The `wasi:http` version whose `outgoing-handler` the world imports (see `wit/pipe.wit`).
const OUTGOING_HANDLER: &str = "wasi:http/outgoing-handler@0.2.12";

/// What the shadowed `handle` needs from an instance's state besides its `wasi:http` view.
pub trait GatedHttpState: WasiHttpView + Send + 'static {
    /// The egress policy this instance is bound by.
    fn policy(&self) -> Arc<EgressPolicy>;
    /// Where refusals are counted.
    fn metrics(&self) -> &Metrics;
}

/// Replace `outgoing-handler.handle` in `linker` with the judged one.
pub fn shadow_outgoing_handler<T: GatedHttpState>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.instance(OUTGOING_HANDLER)?.func_wrap(
        "handle",
        |mut store: StoreContextMut<'_, T>,
         (req, opts): (
            Resource<HostOutgoingRequest>,
            Option<Resource<wasmtime_wasi_http::RequestOptions>>,
        )|
         -> wasmtime::Result<(Result<Resource<HostFutureIncomingResponse>, ErrorCode>,)> {
            let state = store.data_mut();
            let policy = state.policy();
            let verdict = {
                let view = state.http();
                let r = view.table.get(&req)?;
                let scheme = r.scheme.as_ref().map(|s| match s {
                    Scheme::Http => "http".to_string(),
                    Scheme::Https => "https".to_string(),
                    Scheme::Other(o) => o.clone(),
                });
                check_outgoing(
                    &policy,
                    scheme.as_deref(),
                    r.authority.as_deref(),
                    r.path_with_query.as_deref(),
                )
            };
            if let Err(denial) = verdict {
                state.metrics().incr(REFUSED_COUNTER, denial.reason());
                tracing::warn!(
                    error.type = denial.reason(),
                    layer = "handle",
                    "outgoing request refused"
                );
                let view = state.http();
                view.table.delete(req)?;
                if let Some(o) = opts {
                    view.table.delete(o)?;
                }
                return Ok((Err(denial.error_code()),));
            }
            let mut view = state.http();
            match outgoing_handler::Host::handle(&mut view, req, opts) {
                Ok(fut) => Ok((Ok(fut),)),
                Err(e) => Ok((Err(e.downcast()?),)),
            }
        },
    )?;
    Ok(())
}

/// First enforcement layer, for the shadowed `outgoing-handler.handle`: judge the pieces of a
/// `HostOutgoingRequest`. A missing scheme is judged as `https`, the scheme wasmtime's `handle`
/// defaults to (these hooks keep `default_scheme`); a missing authority or path that cannot form
/// a URI is `InvalidUri`. The caller counts the refusal (`egress_refused`, `denial.reason()`).
pub fn check_outgoing(
    policy: &EgressPolicy,
    scheme: Option<&str>,
    authority: Option<&str>,
    path: Option<&str>,
) -> Result<(), Denial> {
    let scheme = scheme.unwrap_or("https");
    scheme_is_https(scheme)?;
    // RFC 3986 §3.3: with an authority, the path is empty or starts with `/`. `http` would accept
    // `x` and put it on the request line verbatim (wasmtime refuses it too, `parse_path_with_query`).
    let path = match path.unwrap_or("") {
        "" => "/",
        p if p.starts_with('/') || p.starts_with('?') => p,
        _ => return Err(Denial::InvalidUri),
    };
    let uri = http::Uri::builder()
        .scheme(scheme)
        .authority(authority.ok_or(Denial::InvalidUri)?)
        .path_and_query(path)
        .build()
        .map_err(|_| Denial::InvalidUri)?;
    policy.check_uri(&uri).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::policy::Authority;

    #[test]
    fn check_outgoing_judges_the_pieces_of_a_request() {
        let allowed = Authority::new("openrouter.ai", 443).unwrap();
        let policy = EgressPolicy::new(vec![allowed], vec![]);
        let ok = |s, a, p| check_outgoing(&policy, s, a, p).map_err(|d| d.reason());
        assert_eq!(
            ok(
                Some("https"),
                Some("openrouter.ai"),
                Some("/api/v1/responses")
            ),
            Ok(())
        );
        assert_eq!(ok(None, Some("OpenRouter.ai:443"), None), Ok(()));
        assert_eq!(
            ok(Some("http"), Some("openrouter.ai"), None),
            Err("not_allowlisted")
        );
        assert_eq!(
            ok(Some("file"), Some(""), Some("/etc/passwd")),
            Err("scheme")
        );
        assert_eq!(ok(Some("https"), None, None), Err("invalid_uri"));
        assert_eq!(
            ok(Some("https"), Some("u:p@openrouter.ai"), None),
            Err("userinfo")
        );
        assert_eq!(
            ok(Some("https"), Some("127.0.0.1"), None),
            Err("not_allowlisted")
        );
        assert_eq!(
            ok(Some("https"), Some("openrouter.ai"), Some("x")),
            Err("invalid_uri")
        );
    }
}

//! Refusals of the egress gate, counted and logged the same way by every layer that refuses
//! (the shadowed `handle`, the hooks and the connector). Logs name only `host[:port]`: never a
//! path, query string, userinfo or header, which may carry secrets.

use http::Uri;

use super::policy::Denial;
use crate::metrics::Metrics;

/// Counter bumped once per refusal, labelled with [`Denial::reason`].
pub const REFUSED_COUNTER: &str = "egress_refused";

/// Count and log one refusal. `authority` is `host[:port]` only: never a path, query string,
/// userinfo or header.
pub(crate) fn record_refusal(metrics: &Metrics, denial: &Denial, authority: &str) {
    metrics.incr(REFUSED_COUNTER, denial.reason());
    tracing::warn!(
        "error.type" = denial.reason(),
        authority,
        detail = %denial,
        "egress refused"
    );
}

/// `host[:port]` of a URI for logs (no userinfo, path or query).
pub(crate) fn loggable_authority(uri: &Uri) -> String {
    match (uri.host(), uri.port_u16()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => String::from("-"),
    }
}

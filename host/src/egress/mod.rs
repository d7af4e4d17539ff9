//! The egress gate: everything between the sandboxed component choosing a URL and bytes leaving
//! the host.
//!
//! Threat: the component chooses URLs. It must reach only what the operator allowed, never a
//! private or internal network (through DNS tricks or alternative IP spellings), never see or
//! exfiltrate the OpenRouter API key, and never pin host resources. The gate has two layers: the
//! shadowed `outgoing-handler.handle` calls [`check_outgoing`] (precise `HttpRequestDenied` to the
//! component), and [`GateHooks::send_request`] judges again, attaches the key for BASE_URL only,
//! and sends through the [`EgressClient`], whose connector judges the URI a third time and every
//! resolved address before dialling it.
//!
//! - [`policy`]: pure allowlist and address classification.
//! - [`resolver`]: name resolution behind a trait (system or fixed answers for tests).
//! - [`client`]: the pooled, checked-address client with timeouts and a body cap, built from
//!   [`connector`] (policy-checked dialling), [`body`] (the guarded response body) and
//!   [`wasi_error`] (failures as `wasi:http` errors).
//! - [`refusal`]: how every layer counts and logs a refusal.
//! - [`handle`]: the shadowed `outgoing-handler.handle`, the first check.
//! - [`hooks`]: the per-instance `wasi:http` hooks.

mod body;
pub mod client;
mod connector;
pub mod handle;
pub mod hooks;
pub mod policy;
pub mod refusal;
pub mod resolver;
mod wasi_error;

pub use client::{EgressClient, EgressError, EgressLimits};
pub use handle::check_outgoing;
pub use hooks::GateHooks;
pub use policy::{Authority, Denial, EgressPolicy, Target, non_public_reason};
pub use refusal::REFUSED_COUNTER;
pub use resolver::{Resolver, StaticResolver, SystemResolver};

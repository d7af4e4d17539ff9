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
//! - [`client`]: the pooled, checked-address client with timeouts and a body cap.
//! - [`hooks`]: the per-instance `wasi:http` hooks.

pub mod client;
pub mod hooks;
pub mod policy;
pub mod resolver;

pub use client::{EgressClient, EgressError, EgressLimits, REFUSED_COUNTER};
pub use hooks::{GateHooks, check_outgoing};
pub use policy::{Authority, Denial, EgressPolicy, Target, non_public_reason};
pub use resolver::{Resolver, StaticResolver, SystemResolver};

//! End-to-end suites: the real host (in-process, its real HTTP server on loopback) running the
//! real component, against the fake OpenRouter over real HTTP and SSE.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod callers;
mod harness;
mod tool_chats;

mod breakers;
mod browser_guard;
mod catalog;
mod client_tools;
mod endpoint_choice;
mod error_templates;
mod front_door;
mod hostile_clients;
mod hostile_upstream;
mod identifiers;
mod identity;
mod log_forging;
mod openai_sdk;
mod persistence;
mod readiness;
mod reasoning;
mod reasoning_replay;
mod request_translation;
mod sandbox;
mod secrets;
mod server_tools;
mod settings;
mod shared_kv;
mod store;
mod streaming;
mod tasks;
mod tool_loop;
mod tool_servers;
mod upstream_failures;
mod usage;

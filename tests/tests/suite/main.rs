//! End-to-end suites: the real host (in-process, its real HTTP server on loopback) running the
//! real component, against the fake OpenRouter over real HTTP and SSE.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod harness;

mod chat;
mod failures;
mod fidelity;
mod fidelity_request;
mod fidelity_server_tools;
mod fidelity_stream;
mod front_door;
mod hostile_clients;
mod hostile_upstream;
mod identity;
mod log_forging;
mod models;
mod openai_sdk;
mod persistence;
mod reasoning_replay;
mod sandbox;
mod secrets;
mod settings;
mod shared_kv;
mod store;
mod tools;
mod tools_host;

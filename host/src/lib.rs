//! Responses Pipe host: serves the OpenAI-compatible front doors, runs one sandboxed component
//! instance per request, and implements each capability the component imports with its own
//! policy checks (egress gate, kv, store, tools, emit).

pub mod admission;
pub mod app;
pub mod bindings;
pub mod catalog_warm_up;
pub mod cli;
pub mod config;
pub mod costs;
pub mod crypto;
pub mod egress;
pub mod emit;
pub mod engine;
pub mod instance;
pub mod kv;
pub mod logsafe;
pub mod maintenance;
pub mod metrics;
pub mod readiness;
pub mod server;
pub mod store;
pub mod tools;

//! Responses Pipe: all pipe logic, as a wasm32-wasip2 component. Every module except
//! `component` is plain Rust over capability traits (`caps`) and unit-tests natively;
//! `component` implements those traits over the WIT imports and exports the `pipe` interface.
//! Every module but `component` is `#[forbid(unsafe_code)]`; the generated ABI glue cannot be.

#[forbid(unsafe_code)]
pub mod artifacts;
#[forbid(unsafe_code)]
pub mod auth_window;
#[forbid(unsafe_code)]
pub mod caps;
#[forbid(unsafe_code)]
pub mod catalog;
#[forbid(unsafe_code)]
pub mod chat;
#[forbid(unsafe_code)]
pub mod chat_body;
#[forbid(unsafe_code)]
pub mod chat_bridge;
#[forbid(unsafe_code)]
pub mod endpoint;
#[forbid(unsafe_code)]
pub mod errors;
#[forbid(unsafe_code)]
pub mod fusion;
#[forbid(unsafe_code)]
pub mod images;
#[forbid(unsafe_code)]
pub mod model;
#[forbid(unsafe_code)]
pub mod model_globs;
#[forbid(unsafe_code)]
pub mod openrouter;
#[forbid(unsafe_code)]
pub mod owui_events;
#[forbid(unsafe_code)]
pub mod phase;
#[forbid(unsafe_code)]
pub mod request;
#[forbid(unsafe_code)]
pub mod server_tools;
#[forbid(unsafe_code)]
pub mod settings;
#[forbid(unsafe_code)]
pub mod settings_document;
#[forbid(unsafe_code)]
pub mod stream;
#[forbid(unsafe_code)]
pub mod templates;
#[forbid(unsafe_code)]
pub mod timefmt;
#[forbid(unsafe_code)]
pub mod tool_loop;
#[forbid(unsafe_code)]
pub mod types;
#[forbid(unsafe_code)]
pub mod usage_status;

// wit-bindgen's generated glue needs `unsafe` (canonical ABI); everything else forbids it.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code, reason = "wit-bindgen generated canonical-ABI glue")]
mod component;

#[cfg(test)]
mod testing;

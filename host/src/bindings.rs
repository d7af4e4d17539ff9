//! Host-side bindings of the `responses-pipe` world (`wit/pipe.wit`). wasi packages are mapped to
//! wasmtime-wasi / wasmtime-wasi-http so their types are shared (one
//! `wasi:http` type set on both sides of the boundary); our own imports
//! are async so backends may do I/O while the guest's fiber waits.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "responses-pipe",
    imports: { default: async },
    exports: { default: async },
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "openwebui:responses-pipe/store.table": crate::store::TableHandle,
    },
});

pub use openwebui::responses_pipe::{crypto, emit, kv, store, tools, types};

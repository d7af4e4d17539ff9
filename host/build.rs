//! Builds the guest component for wasm32-wasip2 (size profile) so the host binary embeds a fresh
//! component and `cargo test` always tests the current guest (a stale embedded
//! component would make every test lie). A separate target
//! directory avoids the outer cargo's build-directory lock.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a build script talks to cargo through stdout and reports failures on stderr"
)]

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let workspace = manifest_dir.parent().map(PathBuf::from).unwrap_or_default();
    let target_dir = workspace.join("target").join("guest");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "build",
            "-p",
            "responses-pipe-guest",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "wasm",
            "--locked",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_MAKEFLAGS")
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!(
            "building the guest component failed ({s}); is the wasm32-wasip2 target installed? (rustup target add wasm32-wasip2)"
        )),
        Err(e) => fail(&format!("could not run cargo to build the guest: {e}")),
    }
    let wasm = target_dir
        .join("wasm32-wasip2")
        .join("wasm")
        .join("responses_pipe_guest.wasm");
    println!("cargo:rustc-env=GUEST_WASM={}", wasm.display());
    for dir in [
        "guest/src",
        "guest/Cargo.toml",
        "settings/src",
        "settings/Cargo.toml",
        "wit",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}

//! Builds the hostile conformance component for wasm32-wasip2 so the sandbox suite always runs
//! the current one (the real component is built by the host crate's build script).

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
    let target_dir = workspace.join("target").join("hostile");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "build",
            "-p",
            "responses-pipe-hostile-guest",
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
        Ok(s) => fail(&format!("building the hostile guest failed ({s})")),
        Err(e) => fail(&format!(
            "could not run cargo to build the hostile guest: {e}"
        )),
    }
    let wasm = target_dir
        .join("wasm32-wasip2")
        .join("wasm")
        .join("responses_pipe_hostile_guest.wasm");
    println!("cargo:rustc-env=HOSTILE_WASM={}", wasm.display());
    for p in ["tests/guests/hostile", "wit"] {
        println!("cargo:rerun-if-changed={}", workspace.join(p).display());
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}

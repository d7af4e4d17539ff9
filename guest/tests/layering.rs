//! The guest's modules form layers: `scripts/guest-deps` reads their `crate::` paths and finds
//! no import cycle (and nothing below `chat`/`component` using them). The script runs with
//! `PIPE_TEST_PYTHON` when set, else `python3`.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_guest_modules_have_no_import_cycle() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = std::env::var("PIPE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(root.join("scripts/guest-deps"))
        .arg(root.join("guest/src"))
        .output()
        .unwrap_or_else(|e| panic!("{python} could not run scripts/guest-deps: {e}"));
    assert!(
        out.status.success(),
        "scripts/guest-deps found a problem:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

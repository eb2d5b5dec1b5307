//! What the orchestrator's binary-driving tests share: the repository root and a
//! transcript of each command they run.

use std::{
    path::{Path, PathBuf},
    process::Output,
};

/// The repository this crate lives in (where release configs and units are found).
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository holds this crate")
        .to_owned()
}

/// Writes the command and everything it printed to the test's output.
pub fn transcript(args: &[&str], output: &Output) {
    eprintln!(
        "$ release-orchestrator {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

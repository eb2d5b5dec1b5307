//! The external tools `scripts/install-tools` puts in the per-user cache (tansu,
//! openapi-spec-validator): found on `PATH` first, else in the cache; a missing tool fails
//! the test saying how to install it.

use std::path::PathBuf;

/// The executable `name`, from `PATH` or from `<cache>/<install_dir>/bin/<name>`, where the
/// cache is `ERP_TOOLS_DIR` or `~/.cache/erp-tools`.
pub fn installed_tool(name: &str, install_dir: &str) -> PathBuf {
    if let Some(found) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    }) {
        return found;
    }
    let tools = std::env::var_os("ERP_TOOLS_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/erp-tools"))
        })
        .expect("HOME or ERP_TOOLS_DIR is set");
    let cached = tools.join(install_dir).join("bin").join(name);
    assert!(
        cached.is_file(),
        "{name} is not installed ({} missing); run scripts/install-tools",
        cached.display()
    );
    cached
}

//! The contracts and unit manifests at a git revision, read from git objects (no checkout),
//! and the contracts compiled from memory with protox.

use std::{
    collections::BTreeMap,
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context as _, anyhow, bail};
use erp_proto::Contracts;
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use super::diff::ContractVersion;
use crate::workspace::Manifest;

/// Runs git in `repo`; its stdout, or the error it printed.
fn git(repo: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("git")
        .current_dir(repo)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running git (is it installed?)")?;
    if !output.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The commit a revision names (checks that it exists).
pub fn resolve(repo: &Path, revision: &str) -> anyhow::Result<String> {
    Ok(git(
        repo,
        &["rev-parse", "--verify", &format!("{revision}^{{commit}}")],
    )
    .with_context(|| format!("`{revision}` is not a revision of {}", repo.display()))?
    .trim()
    .to_owned())
}

/// The commit `head` branched off from `base` (`base` itself when head contains it).
pub fn merge_base(repo: &Path, base: &str, head: &str) -> anyhow::Result<String> {
    Ok(git(repo, &["merge-base", base, head])
        .with_context(|| format!("{base} and {head} share no history"))?
        .trim()
        .to_owned())
}

/// Every `.proto` under `proto/` at `revision`, by its import name (`erp/hrm/v1/employee.proto`).
pub fn proto_sources(repo: &Path, revision: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let listing = git(
        repo,
        &["ls-tree", "-r", "--name-only", revision, "--", "proto/"],
    )?;
    let mut sources = BTreeMap::new();
    for path in listing.lines().filter(|path| path.ends_with(".proto")) {
        let text = git(repo, &["show", &format!("{revision}:{path}")])?;
        let name = path.strip_prefix("proto/").unwrap_or(path);
        sources.insert(name.to_owned(), text);
    }
    if sources.is_empty() {
        bail!("no .proto files under proto/ at {revision}");
    }
    Ok(sources)
}

/// The unit manifests (`<unit>/service.yaml`) at `revision`.
pub fn manifests_at(repo: &Path, revision: &str) -> anyhow::Result<Vec<Manifest>> {
    let listing = git(repo, &["ls-tree", "-r", "--name-only", revision])?;
    let mut manifests = Vec::new();
    for path in listing
        .lines()
        .filter(|path| path.matches('/').count() == 1 && path.ends_with("/service.yaml"))
    {
        let text = git(repo, &["show", &format!("{revision}:{path}")])?;
        let manifest: Manifest = serde_yaml_ng::from_str(&text)
            .map_err(|error| anyhow!("{path} at {revision}: {error}"))?;
        manifests.push(manifest);
    }
    Ok(manifests)
}

/// Every file path at `revision`.
pub fn files_at(repo: &Path, revision: &str) -> anyhow::Result<Vec<String>> {
    Ok(git(repo, &["ls-tree", "-r", "--name-only", revision])?
        .lines()
        .map(str::to_owned)
        .collect())
}

/// One file's text at `revision`.
pub fn file_at(repo: &Path, revision: &str, path: &str) -> anyhow::Result<String> {
    git(repo, &["show", &format!("{revision}:{path}")])
}

/// The paths that differ between two revisions; a renamed file counts as both its old
/// and its new path (a move between crates touches both).
pub fn changed_paths(repo: &Path, base: &str, head: &str) -> anyhow::Result<Vec<String>> {
    Ok(
        git(repo, &["diff", "--name-only", "--no-renames", base, head])?
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

/// Files held in memory, found by import name.
struct MemoryFiles(BTreeMap<String, String>);

impl FileResolver for MemoryFiles {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.0.get(name) {
            Some(source) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// Compiles `sources` (import name → text) the way the build does.
pub fn compile(sources: BTreeMap<String, String>) -> anyhow::Result<ContractVersion> {
    let names: Vec<String> = sources.keys().cloned().collect();
    let mut resolver = ChainFileResolver::new();
    resolver.add(MemoryFiles(sources));
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    for name in &names {
        compiler
            .open_file(name)
            .map_err(|error| anyhow!("compiling the contracts: {error}"))?;
    }
    let contracts = Contracts::decode(&compiler.encode_file_descriptor_set())
        .map_err(|error| anyhow!("reading the compiled contracts: {error}"))?;
    Ok(ContractVersion {
        pool: contracts.pool().clone(),
        contracts,
    })
}

/// The contracts at `revision`, compiled.
pub fn contracts_at(repo: &Path, revision: &str) -> anyhow::Result<ContractVersion> {
    compile(proto_sources(repo, revision)?).with_context(|| format!("at {revision}"))
}

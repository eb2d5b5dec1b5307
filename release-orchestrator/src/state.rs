//! What a local environment runs now (`state.json`) and every deploy attempt
//! (`history.jsonl`), under the environment's state folder (`.erp/local/`).

use std::{
    collections::BTreeMap,
    io::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use semver::Version;
use serde::{Deserialize, Serialize};

use crate::release::UnitKind;

/// A process the environment runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunningService {
    /// The unit.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Service or gateway (the broker is `service`).
    pub kind: UnitKind,
    /// Its process id.
    pub pid: u32,
    /// Where it answers: `http://127.0.0.1:<port>`.
    pub address: String,
    /// Its log file.
    pub log: PathBuf,
    /// When the process started (clock ticks since boot, `/proc/<pid>/stat`): a recycled
    /// pid of another process never matches, so it is never signalled.
    #[serde(default)]
    pub started: Option<u64>,
}

impl RunningService {
    /// Whether this very process still runs (same pid and the same start time).
    pub fn is_running(&self) -> bool {
        is_alive(self.pid)
            && match (self.started, process_start(self.pid)) {
                (Some(recorded), Some(now)) => recorded == now,
                _ => true,
            }
    }

    /// Stops it (SIGTERM, SIGKILL after `grace`) if it is still this process; whether it
    /// was running.
    pub fn stop(&self, grace: Duration) -> bool {
        self.is_running() && stop_process(self.pid, grace)
    }
}

/// The start time of a process in clock ticks since boot (Linux), if known.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) start with the state (field 3);
    // the start time is field 22.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The environment as the last deploy left it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EnvironmentState {
    /// The release version running.
    pub release: String,
    /// The copy of its release config (for rollback).
    pub release_file: PathBuf,
    /// SHA-256 of that config.
    pub digest: String,
    /// When it was deployed (RFC 3339).
    pub deployed_at: String,
    /// The broker's bootstrap servers.
    pub broker: Option<String>,
    /// The processes, in start order (the broker first when started here).
    pub services: Vec<RunningService>,
    /// The gateway's URL, when the release has one.
    pub gateway_url: Option<String>,
    /// The local bootstrap secret of the auth service (the file is private to its owner).
    pub bootstrap_secret: String,
    /// The binaries it runs on (kept for rollbacks).
    #[serde(default)]
    pub bin_dir: Option<PathBuf>,
}

impl EnvironmentState {
    /// The versions of the services still alive.
    pub fn running_versions(&self) -> BTreeMap<String, Version> {
        self.services
            .iter()
            .filter(|service| service.is_running())
            .filter_map(|service| {
                Some((service.name.clone(), Version::parse(&service.version).ok()?))
            })
            .collect()
    }
}

/// One deploy attempt.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HistoryEntry {
    /// When it started (RFC 3339).
    pub at: String,
    /// `deploy`, `rollback` or `down`.
    pub action: String,
    /// The release version.
    pub release: String,
    /// SHA-256 of its config.
    pub digest: String,
    /// Service versions.
    pub versions: BTreeMap<String, String>,
    /// `succeeded`, `failed`, `rolled_back`.
    pub result: String,
    /// How long it took.
    pub duration_ms: u64,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The files of one environment's state folder.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The folder (created on first write).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A service's own folder (database, log).
    pub fn service_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Holds the environment for one deploy, rollback or `down` at a time: a second one
    /// is refused while the returned file is open (the OS releases the lock when the
    /// process ends, however it ends).
    pub fn lock(&self) -> anyhow::Result<std::fs::File> {
        std::fs::create_dir_all(&self.root)?;
        let path = self.root.join("deploy.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "another deploy, rollback or down is working on {} (a foreground deploy holds it until Ctrl-C); wait for it to finish",
                self.root.display()
            ),
            Err(std::fs::TryLockError::Error(error)) => {
                Err(anyhow::Error::new(error).context(format!("locking {}", path.display())))
            }
        }
    }

    fn state_file(&self) -> PathBuf {
        self.root.join("state.json")
    }

    fn history_file(&self) -> PathBuf {
        self.root.join("history.jsonl")
    }

    /// Where a release config is kept for rollback: `releases/<version>-<digest>.yml`, so
    /// an edited config of the same version never overwrites the one that ran.
    pub fn release_copy(&self, version: &str, digest: &str) -> PathBuf {
        self.root
            .join("releases")
            .join(format!("{version}-{}.yml", &digest[..digest.len().min(12)]))
    }

    /// The saved config of the newest successful deploy (or rollback) of `version`.
    pub fn saved_release(&self, version: &str) -> anyhow::Result<Option<PathBuf>> {
        Ok(self
            .history()?
            .into_iter()
            .rev()
            .filter(|entry| entry.release == version && entry.result == "succeeded")
            .filter(|entry| entry.action == "deploy" || entry.action == "rollback")
            .map(|entry| self.release_copy(&entry.release, &entry.digest))
            .find(|path| path.is_file()))
    }

    /// The state, if a deploy left one.
    pub fn load(&self) -> anyhow::Result<Option<EnvironmentState>> {
        match std::fs::read_to_string(self.state_file()) {
            Ok(text) => Ok(Some(serde_json::from_str(&text).map_err(|error| {
                anyhow::anyhow!("{}: {error}", self.state_file().display())
            })?)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(anyhow::anyhow!("{}: {error}", self.state_file().display())),
        }
    }

    /// Writes the state atomically, readable by its owner only (it holds a secret).
    pub fn save(&self, state: &EnvironmentState) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.root)?;
        let scratch = self.root.join(".state.json.tmp");
        {
            let mut file = private_file(&scratch)?;
            file.write_all(serde_json::to_string_pretty(state)?.as_bytes())?;
            file.sync_all()?;
        }
        std::fs::rename(&scratch, self.state_file())?;
        Ok(())
    }

    /// Forgets the state (after `down`).
    pub fn clear(&self) -> anyhow::Result<()> {
        match std::fs::remove_file(self.state_file()) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
            _ => Ok(()),
        }
    }

    /// Appends one attempt to the history.
    pub fn record(&self, entry: &HistoryEntry) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.root)?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.history_file())?;
        writeln!(file, "{}", serde_json::to_string(entry)?)?;
        Ok(())
    }

    /// Every recorded attempt, oldest first (unreadable lines skipped).
    pub fn history(&self) -> anyhow::Result<Vec<HistoryEntry>> {
        match std::fs::read_to_string(self.history_file()) {
            Ok(text) => Ok(text
                .lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(error) => Err(error.into()),
        }
    }
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

/// Whether a process id is alive (and not a zombie of ours).
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => pid_of(pid).is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok()),
    }
}

fn pid_of(pid: u32) -> Option<rustix::process::Pid> {
    rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)
}

fn signal(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = pid_of(pid) {
        // Gone already: nothing to do; not ours to signal: is_alive tells the caller.
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// SIGTERM, then SIGKILL if it has not exited within `grace`. Returns whether it was
/// running.
pub fn stop_process(pid: u32, grace: Duration) -> bool {
    if !is_alive(pid) {
        return false;
    }
    signal(pid, rustix::process::Signal::TERM);
    let started = Instant::now();
    while is_alive(pid) && started.elapsed() < grace {
        std::thread::sleep(Duration::from_millis(50));
    }
    if is_alive(pid) {
        signal(pid, rustix::process::Signal::KILL);
    }
    true
}

/// The last `lines` lines of a log file.
pub fn tail(path: &Path, lines: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|line| (*line).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn this_process(started: Option<u64>) -> RunningService {
        RunningService {
            name: "me".to_owned(),
            version: "1.0.0".to_owned(),
            kind: UnitKind::Service,
            pid: std::process::id(),
            address: String::new(),
            log: PathBuf::new(),
            started,
        }
    }

    #[test]
    fn one_deploy_at_a_time_holds_the_environment() {
        let dir = tempfile::tempdir().expect("dir");
        let state = StateDir::new(dir.path().join("local"));
        let held = state.lock().expect("the first takes it");
        let refused = state.lock().expect_err("a second is refused");
        assert!(refused.to_string().contains("another deploy"), "{refused}");
        drop(held);
        state.lock().expect("free again once the first is done");
    }

    #[test]
    fn a_recycled_pid_is_not_mistaken_for_the_recorded_process() {
        let started = process_start(std::process::id());
        assert!(started.is_some(), "this process has a start time");
        assert!(this_process(started).is_running());
        let other = started.map(|ticks| ticks + 1);
        assert!(
            !this_process(other).is_running(),
            "same pid, another start time: not ours, never signalled"
        );
    }
}

//! `release-orchestrator`: validate, plan and deploy ERP mesh releases.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context as _, anyhow};
use clap::{CommandFactory as _, Parser, Subcommand, ValueEnum};
use release_orchestrator::{
    environment::{Environment, Target},
    kubernetes::KubeTarget,
    local::{LocalOptions, LocalTarget, ReleaseSource},
    plan::{Change, plan},
    release::{Problem, parse},
    report::Reporter,
    state::{self, StateDir},
    validate::validate,
    workspace::Workspace,
};

const EXIT_CODES: &str = "Exit codes:
  0   success (plan: nothing to change)
  1   the deploy, rollback or command failed (a failed deploy has been rolled back)
  2   plan --detailed-exitcode: the plan changes something
  64  wrong usage (unknown command or flag)
  65  the release config has problems (each printed as file:line: key: message)";

const STATUS_EXIT_CODES: &str = "Exit codes:
  0   every process the environment runs is alive (or nothing is deployed)
  1   a process is not running, or the state could not be read
  64  wrong usage";

const OTHER_EXIT_CODES: &str = "Exit codes:
  0   success
  1   the command failed
  64  wrong usage (unknown command or flag)";

/// Validates ERP mesh release configs, plans their stages in dependency order and deploys
/// them — as local processes on SQLite and an embedded broker (`--env local`, the default).
///
/// A release config is a path, or a bare name looked up in
/// `release-orchestrator/release-configs/` (e.g. `v1.0.0.yml`).
#[derive(Debug, Parser)]
#[command(version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
enum Output {
    /// Lines for people.
    #[default]
    Text,
    /// JSON (one document, or one event per line while deploying).
    Json,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Reports every problem of a release config at once (file, line, key, message).
    #[command(after_help = EXIT_CODES)]
    Validate {
        /// The release config.
        release: String,
        /// The environment it is for (`local` also checks units and versions against this
        /// repository).
        #[arg(long, default_value = "local")]
        env: String,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: Output,
    },
    /// Prints the stages and each service's change against what the environment runs.
    #[command(after_help = EXIT_CODES)]
    Plan {
        /// The release config.
        release: String,
        /// The environment (a name in infra/environments/ or a file).
        #[arg(long, default_value = "local")]
        env: String,
        /// Exit 2 when the plan changes something, 0 when it does not.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: Output,
    },
    /// Validates, then deploys stage by stage behind health gates and smoke tests; on
    /// failure stops what it started and restores the release that ran before.
    #[command(after_help = EXIT_CODES)]
    Deploy {
        /// The release config.
        release: String,
        #[command(flatten)]
        run: RunArgs,
    },
    /// What the environment runs now, and whether each process is alive.
    #[command(after_help = STATUS_EXIT_CODES)]
    Status {
        /// The environment.
        #[arg(long, default_value = "local")]
        env: String,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: Output,
    },
    /// Stops everything the environment runs, in reverse order.
    #[command(after_help = OTHER_EXIT_CODES)]
    Down {
        /// The environment.
        #[arg(long, default_value = "local")]
        env: String,
    },
    /// The last lines of a service's log.
    #[command(after_help = OTHER_EXIT_CODES)]
    Logs {
        /// The service (or `erp-dev-broker`).
        service: String,
        /// The environment.
        #[arg(long, default_value = "local")]
        env: String,
        /// How many lines.
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
    },
    /// Every deploy, rollback and down recorded for the environment.
    #[command(after_help = OTHER_EXIT_CODES)]
    History {
        /// The environment.
        #[arg(long, default_value = "local")]
        env: String,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: Output,
    },
    /// Deploys a release that was deployed before, from its saved config.
    #[command(after_help = EXIT_CODES)]
    Rollback {
        /// The release version to go back to.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Contract changes: which units they affect and how, the compatibility policy, and
    /// the CI triggers of the affected units' repositories.
    Contracts {
        #[command(subcommand)]
        command: ContractsCommand,
    },
    /// Prints a shell completion script.
    #[command(after_help = OTHER_EXIT_CODES)]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
enum AffectedOutput {
    /// Lines for people.
    #[default]
    Text,
    /// The whole report.
    Json,
    /// `{"include": [{unit, repository, classes}]}` for a GitHub Actions job matrix.
    GithubMatrix,
}

#[derive(Debug, clap::Args)]
struct Revisions {
    /// The revision to compare against (e.g. `origin/main`, a tag, a commit).
    #[arg(long)]
    base: String,
    /// The revision with the change.
    #[arg(long, default_value = "HEAD")]
    head: String,
    /// The git repository (the contracts are read from its objects; nothing is checked out).
    #[arg(long, default_value = ".")]
    repo: PathBuf,
}

#[derive(Debug, Subcommand)]
enum ContractsCommand {
    /// Compares the contracts at two revisions symbol by symbol and lists the units each
    /// change reaches (serves, uses, publishes, consumes; through message nesting; through
    /// shared-library crates) with its class: additive, access, rest, event, wire. A wire or
    /// REST break inside an existing vN package fails (exit 1) naming the symbol and rule.
    #[command(
        after_help = "Exit codes:\n  0  allowed (or nothing changed)\n  1  a change breaks the policy, or the check could not run\n  64 wrong usage"
    )]
    Affected {
        #[command(flatten)]
        revisions: Revisions,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: AffectedOutput,
    },
    /// Sends a `contracts-changed` repository_dispatch to each affected unit's repository.
    #[command(after_help = OTHER_EXIT_CODES)]
    Dispatch {
        #[command(flatten)]
        revisions: Revisions,
        /// The GitHub API root.
        #[arg(long, default_value = "https://api.github.com")]
        api_url: String,
        /// The environment variable holding the token.
        #[arg(long, default_value = "GITHUB_TOKEN")]
        token_env: String,
        /// Print the requests instead of sending them.
        #[arg(long)]
        dry_run: bool,
        /// Attempts per repository on 429, 5xx or connection errors (backoff doubles from 500 ms).
        #[arg(long, default_value_t = 3)]
        attempts: u32,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The environment (a name in infra/environments/ or a file).
    #[arg(long, default_value = "local")]
    env: String,
    /// Take the service binaries from this folder instead of building them.
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Leave the services running and return (state in the environment's state folder).
    #[arg(long)]
    detach: bool,
    /// Kubernetes: take over fields another field manager owns instead of failing.
    #[arg(long)]
    force_conflicts: bool,
    /// Progress as text, or JSON events (one per line).
    #[arg(short, long, value_enum, default_value_t)]
    output: Output,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let usage = error.use_stderr();
            let _ = error.print();
            return ExitCode::from(if usage { 64 } else { 0 });
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Commands::Completions { shell } = cli.command {
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "release-orchestrator",
            &mut std::io::stdout(),
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Commands::Contracts { command } = cli.command {
        return contracts(command).await;
    }
    let root = repository_root()?;
    let workspace = Workspace::discover(&root)?;
    match cli.command {
        Commands::Validate {
            release,
            env,
            output,
        } => {
            let environment = Environment::load(&root, &env)?;
            let (_, problems) = load_release(&root, &release, &workspace, &environment)?;
            if matches!(output, Output::Json) {
                println!("{}", serde_json::json!({ "problems": problems.1 }));
            } else if problems.1.is_empty() {
                println!("{}: valid", problems.0.display());
            } else {
                print_problems(&problems.0, &problems.1);
            }
            Ok(if problems.1.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(65)
            })
        }
        Commands::Plan {
            release,
            env,
            detailed_exitcode,
            output,
        } => {
            let environment = Environment::load(&root, &env)?;
            let (source, (path, problems)) =
                load_release(&root, &release, &workspace, &environment)?;
            if !problems.is_empty() {
                print_problems(&path, &problems);
                return Ok(ExitCode::from(65));
            }
            let running = running_versions(&workspace, &environment).await?;
            let planned = plan(
                &source.release,
                &environment.name,
                &running,
                Some(&workspace),
            );
            if matches!(output, Output::Json) {
                println!("{}", serde_json::to_string_pretty(&planned)?);
            } else {
                println!(
                    "release {} → {} ({} stages{})",
                    planned.release,
                    planned.environment,
                    planned.stages.len(),
                    if planned.derived_order {
                        ", derived from the dependencies"
                    } else {
                        ""
                    }
                );
                for stage in &planned.stages {
                    println!("stage {}:", stage.number);
                    for service in &stage.services {
                        let change = match &service.change {
                            Change::New => "new".to_owned(),
                            Change::Upgrade { from } => format!("upgrade from {from}"),
                            Change::Downgrade { from } => format!("downgrade from {from}"),
                            Change::Unchanged => "unchanged".to_owned(),
                            Change::Library => "library (verified, not deployed)".to_owned(),
                        };
                        println!("  {:<26} {:<9} {change}", service.name, service.version);
                    }
                }
            }
            Ok(if detailed_exitcode && planned.has_changes() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        Commands::Deploy { release, run } => {
            let environment = Environment::load(&root, &run.env)?;
            let (source, (path, problems)) =
                load_release(&root, &release, &workspace, &environment)?;
            if !problems.is_empty() {
                print_problems(&path, &problems);
                return Ok(ExitCode::from(65));
            }
            deploy(&workspace, &environment, &run, &source).await
        }
        Commands::Rollback { to, run } => {
            let environment = Environment::load(&root, &run.env)?;
            if environment.target == Target::Kubernetes {
                let name = format!("v{}.yml", to.trim_start_matches('v'));
                let (source, (path, problems)) =
                    load_release(&root, &name, &workspace, &environment)?;
                if !problems.is_empty() {
                    print_problems(&path, &problems);
                    return Ok(ExitCode::from(65));
                }
                return deploy(&workspace, &environment, &run, &source).await;
            }
            let version = to.trim_start_matches('v');
            let copy = StateDir::new(environment.state_dir.clone())
                .saved_release(version)?
                .ok_or_else(|| {
                    anyhow!(
                        "release {version} was never deployed successfully to {}; `history` lists what was",
                        environment.name
                    )
                })?;
            let text = std::fs::read_to_string(&copy)
                .with_context(|| format!("reading {}", copy.display()))?;
            // It runs on the binaries kept when it was deployed, so it is checked for its
            // own consistency, not against today's crate versions.
            let kept = copy.with_extension("").join("bin");
            let run = RunArgs {
                bin_dir: run.bin_dir.or_else(|| kept.is_dir().then_some(kept)),
                ..run
            };
            let (release, mut problems) = parse(&text);
            let against = if run.bin_dir.is_some() {
                None
            } else {
                Some(&workspace)
            };
            problems.extend(validate(&release, against));
            if !problems.is_empty() {
                print_problems(&copy, &problems);
                return Ok(ExitCode::from(65));
            }
            let source = ReleaseSource {
                path: copy,
                text,
                release,
            };
            deploy(&workspace, &environment, &run, &source).await
        }
        Commands::Status { env, output } => {
            let environment = Environment::load(&root, &env)?;
            if environment.target == Target::Kubernetes {
                let reporter = Reporter::new(false);
                let target = KubeTarget::connect(&workspace, &environment, &reporter).await?;
                let history = target.history().await?;
                let current = history
                    .iter()
                    .rev()
                    .find(|record| record.result == "succeeded");
                if matches!(output, Output::Json) {
                    println!(
                        "{}",
                        serde_json::json!({"environment": environment.name, "current": current})
                    );
                } else {
                    match current {
                        None => println!("{}: nothing deployed", environment.name),
                        Some(record) => {
                            println!(
                                "{}: release {} (deployed {})",
                                environment.name, record.release, record.started_at
                            );
                            for (service, version) in &record.versions {
                                println!("  {service:<24} {version}");
                            }
                        }
                    }
                }
                return Ok(ExitCode::SUCCESS);
            }
            let Some(current) = StateDir::new(environment.state_dir.clone()).load()? else {
                println!("{}: nothing deployed", environment.name);
                return Ok(ExitCode::SUCCESS);
            };
            if matches!(output, Output::Json) {
                let services: Vec<_> = current
                    .services
                    .iter()
                    .map(|service| {
                        serde_json::json!({
                            "name": service.name, "version": service.version, "pid": service.pid,
                            "address": service.address, "alive": service.is_running(),
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"release": current.release, "deployed_at": current.deployed_at,
                        "gateway_url": current.gateway_url, "services": services})
                );
            } else {
                println!(
                    "{}: release {} (deployed {})",
                    environment.name, current.release, current.deployed_at
                );
                for service in &current.services {
                    println!(
                        "  {:<24} {:<9} {:<28} pid {:>7}  {}",
                        service.name,
                        service.version,
                        service.address,
                        service.pid,
                        if service.is_running() {
                            "running"
                        } else {
                            "NOT RUNNING"
                        }
                    );
                }
                if let Some(gateway) = &current.gateway_url {
                    println!("gateway: {gateway}");
                }
            }
            let all_alive = current.services.iter().all(|service| service.is_running());
            Ok(if all_alive {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Commands::Down { env } => {
            let environment = Environment::load(&root, &env)?;
            let reporter = Reporter::new(false);
            let target = local_target(&workspace, &environment, &reporter, None, false)?;
            if !target.down()? {
                println!("{}: nothing deployed", environment.name);
            }
            Ok(ExitCode::SUCCESS)
        }
        Commands::Logs {
            service,
            env,
            lines,
        } => {
            let environment = Environment::load(&root, &env)?;
            let log = StateDir::new(environment.state_dir.clone())
                .service_dir(&service)
                .join("service.log");
            if !log.is_file() {
                return Err(anyhow!("no log for {service} ({} missing)", log.display()));
            }
            for line in state::tail(&log, lines) {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Commands::History { env, output } => {
            let environment = Environment::load(&root, &env)?;
            if environment.target == Target::Kubernetes {
                let reporter = Reporter::new(false);
                let target = KubeTarget::connect(&workspace, &environment, &reporter).await?;
                let records = target.history().await?;
                if matches!(output, Output::Json) {
                    println!("{}", serde_json::to_string_pretty(&records)?);
                } else {
                    for record in &records {
                        println!(
                            "{:<22} {:<9} {:<12} {:>8.1}s  {}",
                            record.started_at,
                            record.release,
                            record.result,
                            record.duration_ms as f64 / 1000.0,
                            record
                                .versions
                                .iter()
                                .map(|(service, version)| format!("{service}={version}"))
                                .collect::<Vec<_>>()
                                .join(" ")
                        );
                    }
                }
                return Ok(ExitCode::SUCCESS);
            }
            let entries = StateDir::new(environment.state_dir.clone()).history()?;
            if matches!(output, Output::Json) {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                println!(
                    "{:<33} {:<9} {:<9} {:<12} {:>8}  DIGEST",
                    "AT", "ACTION", "RELEASE", "RESULT", "SECONDS"
                );
                for entry in &entries {
                    println!(
                        "{:<33} {:<9} {:<9} {:<12} {:>8.1}  {}",
                        entry.at,
                        entry.action,
                        entry.release,
                        entry.result,
                        entry.duration_ms as f64 / 1000.0,
                        &entry.digest[..entry.digest.len().min(12)]
                    );
                    if let Some(error) = &entry.error {
                        println!("    {}", error.lines().next().unwrap_or_default());
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Commands::Completions { .. } | Commands::Contracts { .. } => Ok(ExitCode::SUCCESS),
    }
}

async fn contracts(command: ContractsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ContractsCommand::Affected { revisions, output } => {
            let report = release_orchestrator::contracts::affected(
                &revisions.repo,
                &revisions.base,
                &revisions.head,
            )?;
            match output {
                AffectedOutput::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                AffectedOutput::GithubMatrix => println!(
                    "{}",
                    release_orchestrator::contracts::github_matrix(&report)
                ),
                AffectedOutput::Text => print_affected(&report),
            }
            if report.violations.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                for violation in &report.violations {
                    eprintln!(
                        "refused: {} ({})\n  rule: {}",
                        violation.symbol, violation.what, violation.rule
                    );
                }
                Ok(ExitCode::FAILURE)
            }
        }
        ContractsCommand::Dispatch {
            revisions,
            api_url,
            token_env,
            dry_run,
            attempts,
        } => {
            let report = release_orchestrator::contracts::affected(
                &revisions.repo,
                &revisions.base,
                &revisions.head,
            )?;
            if report.units.is_empty() {
                println!("no unit is affected; nothing to dispatch");
                return Ok(ExitCode::SUCCESS);
            }
            let options = release_orchestrator::contracts::dispatch::DispatchOptions {
                api_url,
                token: std::env::var(&token_env).ok(),
                dry_run,
                attempts,
                backoff: std::time::Duration::from_millis(500),
            };
            release_orchestrator::contracts::dispatch::send(&report, &options).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_affected(report: &release_orchestrator::contracts::Report) {
    println!(
        "contracts {}..{}: {} change(s) in {}",
        &report.base[..report.base.len().min(10)],
        &report.head[..report.head.len().min(10)],
        report.changes.len(),
        if report.changed_packages.is_empty() {
            "no package".to_owned()
        } else {
            report
                .changed_packages
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    for change in &report.changes {
        println!(
            "  {:<9} {}  {}",
            change.class.as_str(),
            change.symbol,
            change.what
        );
    }
    if report.units.is_empty() {
        println!("no unit is affected");
    }
    for impact in &report.units {
        let classes = impact.class_names();
        println!(
            "{} ({}): {}",
            impact.unit,
            impact.repository,
            classes.join(", ")
        );
        for reason in &impact.reasons {
            println!("    {reason}");
        }
    }
}

async fn deploy(
    workspace: &Workspace,
    environment: &Environment,
    run: &RunArgs,
    source: &ReleaseSource,
) -> anyhow::Result<ExitCode> {
    let reporter = Reporter::new(matches!(run.output, Output::Json));
    if environment.target == Target::Kubernetes {
        let mut target = KubeTarget::connect(workspace, environment, &reporter).await?;
        target.force_conflicts = run.force_conflicts;
        return match target.deploy(source).await {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(error) => {
                eprintln!("error: {error:#}");
                Ok(ExitCode::FAILURE)
            }
        };
    }
    let target = local_target(
        workspace,
        environment,
        &reporter,
        run.bin_dir.clone(),
        run.detach,
    )?;
    match target.deploy(source).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            eprintln!("error: {error:#}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// What the environment runs now: the local state file, or the cluster's history.
async fn running_versions(
    workspace: &Workspace,
    environment: &Environment,
) -> anyhow::Result<std::collections::BTreeMap<String, semver::Version>> {
    if environment.target == Target::Kubernetes {
        let reporter = Reporter::new(false);
        let target = KubeTarget::connect(workspace, environment, &reporter).await?;
        return Ok(target
            .running_versions()
            .await?
            .into_iter()
            .filter_map(|(service, version)| {
                Some((service, semver::Version::parse(&version).ok()?))
            })
            .collect());
    }
    Ok(StateDir::new(environment.state_dir.clone())
        .load()?
        .map(|state| state.running_versions())
        .unwrap_or_default())
}

fn local_target<'a>(
    workspace: &'a Workspace,
    environment: &'a Environment,
    reporter: &'a Reporter,
    bin_dir: Option<PathBuf>,
    detach: bool,
) -> anyhow::Result<LocalTarget<'a>> {
    if environment.target != Target::Local {
        return Err(anyhow!(
            "environment {} is a Kubernetes environment: `down` and `logs` are for local ones (use `status`, `history` and `rollback --to`)",
            environment.name
        ));
    }
    Ok(LocalTarget {
        workspace,
        environment,
        reporter,
        options: LocalOptions { bin_dir, detach },
    })
}

/// The repository: the first folder above the current one holding `release-orchestrator/`.
fn repository_root() -> anyhow::Result<PathBuf> {
    let here = std::env::current_dir()?;
    Workspace::find_root(&here).ok_or_else(|| {
        anyhow!(
            "run this inside the ERP mesh repository (no folder above {} holds release-orchestrator/)",
            here.display()
        )
    })
}

/// Reads and validates a release config: `(source, (path, problems))`.
fn load_release(
    root: &Path,
    name: &str,
    workspace: &Workspace,
    environment: &Environment,
) -> anyhow::Result<(ReleaseSource, (PathBuf, Vec<Problem>))> {
    let path = resolve_release(root, name)?;
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let (release, mut problems) = parse(&text);
    let local = environment.target == Target::Local;
    problems.extend(validate(&release, local.then_some(workspace)));
    problems.sort();
    problems.dedup();
    Ok((
        ReleaseSource {
            path: path.clone(),
            text,
            release,
        },
        (path, problems),
    ))
}

/// A path as given, or a bare name in `release-orchestrator/release-configs/`.
fn resolve_release(root: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let given = PathBuf::from(name);
    if given.is_file() {
        return Ok(given);
    }
    let configs = root.join("release-orchestrator/release-configs");
    let found = configs.join(name);
    if found.is_file() {
        return Ok(found);
    }
    let mut known: Vec<String> = std::fs::read_dir(&configs)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    known.sort();
    Err(anyhow!(
        "no release config {name} (not a file, and not in {}; there: {})",
        configs.display(),
        known.join(", ")
    ))
}

fn print_problems(path: &Path, problems: &[Problem]) {
    eprintln!(
        "{}: {} problem{}",
        path.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for problem in problems {
        eprintln!(
            "{}:{}: {}: {}",
            path.display(),
            problem.line,
            if problem.key.is_empty() {
                "(document)"
            } else {
                &problem.key
            },
            problem.message
        );
    }
}

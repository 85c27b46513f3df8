//! The command line: parsed with clap, run into an exit code.

use crate::manifest::{read_inputs, InputError};
use crate::offline::{admit_documents, OfflineError};
use crate::policy::{PolicyArg, PolicyError};
use crate::report;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "portkey-guard",
    version,
    about = "Admission webhook that enforces the Portkey AI Gateway deployment policy"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the admission webhook (HTTPS) and its probe/metrics port.
    Serve(crate::server::ServeArgs),
    /// Admit manifests offline exactly as the webhook would (mutate, then
    /// validate). Exit 0: all allowed; 1: something denied; 2: unusable input.
    Check {
        #[command(flatten)]
        policy: PolicyArg,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Files or directories (*.yaml, *.yml, *.json, recursively), or -
        /// for standard input. Namespaced objects without a namespace are
        /// admitted as if in the policy's namespace.
        paths: Vec<PathBuf>,
    },
    /// Print the manifests as the cluster would store them after mutation.
    Mutate {
        #[command(flatten)]
        policy: PolicyArg,
        paths: Vec<PathBuf>,
    },
    /// Print the effective policy (the default, or --policy merged over it).
    Policy {
        #[command(flatten)]
        policy: PolicyArg,
    },
    /// Write a CA and a serving certificate (ca.crt, tls.crt, tls.key) for
    /// local runs and tests; print the base64 caBundle.
    Certs(crate::certs::CertsArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// Exit codes of the offline commands.
pub const EXIT_ALLOWED: u8 = 0;
pub const EXIT_DENIED: u8 = 1;
pub const EXIT_UNUSABLE: u8 = 2;

#[derive(Debug, thiserror::Error)]
enum OfflineFailure {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Admit(#[from] OfflineError),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    #[error("cannot render YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

/// Runs a command.
pub fn run(command: &Command) -> ExitCode {
    let result = match command {
        Command::Check {
            policy,
            output,
            paths,
        } => check(policy, *output, paths),
        Command::Mutate { policy, paths } => mutate(policy, paths),
        Command::Policy { policy } => print_policy(policy),
        Command::Certs(args) => return crate::certs::run(args),
        Command::Serve(args) => return crate::server::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("portkey-guard: error: {e}");
            ExitCode::from(EXIT_UNUSABLE)
        }
    }
}

fn check(policy: &PolicyArg, output: Output, paths: &[PathBuf]) -> Result<u8, OfflineFailure> {
    let policy = policy.load()?;
    let docs = read_inputs(paths)?;
    let reports = admit_documents(&docs, &policy)?;
    let text = match output {
        Output::Json => report::json(&reports) + "\n",
        Output::Text => {
            let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            report::text(&reports, colour)
        }
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(if reports.iter().all(|r| r.allowed) {
        EXIT_ALLOWED
    } else {
        EXIT_DENIED
    })
}

fn mutate(policy: &PolicyArg, paths: &[PathBuf]) -> Result<u8, OfflineFailure> {
    let policy = policy.load()?;
    let docs = read_inputs(paths)?;
    let reports = admit_documents(&docs, &policy)?;
    let mut out = String::new();
    for r in &reports {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&r.stored)?);
    }
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(EXIT_ALLOWED)
}

fn print_policy(policy: &PolicyArg) -> Result<u8, OfflineFailure> {
    let policy = policy.load()?;
    std::io::stdout().write_all(policy.to_yaml().as_bytes())?;
    Ok(EXIT_ALLOWED)
}

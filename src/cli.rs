//! The command line: parsed with clap, run into an exit code.

use crate::manifest::{read_inputs, read_kustomization, InputError, Inputs, Limits};
use crate::offline::{
    admit_documents_as, ObjectReport, OfflineError, Requester, Status, OFFLINE_USER,
};
use crate::policy::{PolicyArg, PolicyError};
use crate::report::{self, Report};
use crate::rules::Action;
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
    Serve(Box<crate::server::ServeArgs>),
    /// Admit manifests offline exactly as the webhook would (mutate, then
    /// validate). Exit 0: all allowed or skipped; 1: something denied (or
    /// warned, with --fail-on-warn); 2: unusable input.
    Check {
        #[command(flatten)]
        policy: PolicyArg,
        /// text: for people, `file:line:column` per finding; json: every
        /// object with its status and located findings; sarif: SARIF 2.1.0
        /// for code scanning; junit: JUnit XML, a test case per object;
        /// github: GitHub Actions workflow commands (annotations).
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Exit 1 when a warn-action rule is violated, too.
        #[arg(long)]
        fail_on_warn: bool,
        /// Judge as this requesting user (default portkey-guard:offline).
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
        /// Judge as a member of this group (repeatable).
        #[arg(long = "as-group", value_name = "GROUP")]
        as_groups: Vec<String>,
        #[command(flatten)]
        input: InputArgs,
    },
    /// Judge the objects that already run: every policed object of the
    /// policy's namespace (and routes of every namespace, for the hostname
    /// guard), read from the API server, as a write of each would be
    /// judged, plus the relations between them. Exit 0: nothing denied; 1:
    /// something would be denied (or warned, with --fail-on-warn); 2: the
    /// API server could not be read, or an object could not be judged.
    Audit {
        #[command(flatten)]
        policy: PolicyArg,
        /// text: for people; json: every object with its status and
        /// findings, as `check --output json` prints them.
        #[arg(long, value_enum, default_value_t = AuditOutput::Text)]
        output: AuditOutput,
        /// Exit 1 when a warn-action rule is violated, too.
        #[arg(long)]
        fail_on_warn: bool,
        /// Also write the findings as a PolicyReport (wgpolicyk8s.io/v1alpha2)
        /// named portkey-guard in the policy's namespace, and a
        /// ClusterPolicyReport for the Namespace and other namespaces'
        /// routes; updated in place.
        #[arg(long)]
        report: bool,
        #[command(flatten)]
        cluster: crate::cluster::ClusterArgs,
    },
    /// Print the manifests as the cluster would store them after mutation.
    Mutate {
        #[command(flatten)]
        policy: PolicyArg,
        #[command(flatten)]
        input: InputArgs,
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

/// What the offline commands read.
#[derive(Debug, clap::Args)]
pub struct InputArgs {
    /// Render this kustomization with `kubectl kustomize` and read the
    /// result (repeatable); findings point into the files it lists.
    #[arg(short = 'k', long = "kustomize", value_name = "DIR")]
    pub kustomize: Vec<PathBuf>,
    /// Refuse a file (or standard input, or rendered output) larger than
    /// this.
    #[arg(long, value_name = "BYTES", default_value_t = crate::manifest::DEFAULT_MAX_FILE_BYTES)]
    pub max_file_bytes: u64,
    /// Refuse a file with more YAML documents than this.
    #[arg(long, value_name = "N", default_value_t = crate::yaml::Limits::default().max_documents)]
    pub max_documents: usize,
    /// Files or directories (*.yaml, *.yml, *.json, recursively), or -
    /// for standard input. In a directory, kustomization files and files
    /// that hold no Kubernetes object are skipped with a note. Namespaced
    /// objects without a namespace are admitted as if in the policy's
    /// namespace.
    pub paths: Vec<PathBuf>,
}

impl InputArgs {
    /// Every object of every input; an input with none is unusable.
    fn read(&self) -> Result<Inputs, OfflineFailure> {
        let limits = Limits {
            max_file_bytes: self.max_file_bytes,
            yaml: crate::yaml::Limits {
                max_documents: self.max_documents,
                ..crate::yaml::Limits::default()
            },
            ..Limits::default()
        };
        let mut inputs = Inputs::default();
        for dir in &self.kustomize {
            let rendered = read_kustomization(dir, &limits)?;
            inputs.documents.extend(rendered.documents);
        }
        if !self.paths.is_empty() || self.kustomize.is_empty() {
            let read = read_inputs(&self.paths, &limits)?;
            inputs.documents.extend(read.documents);
            inputs.skipped.extend(read.skipped);
        }
        for s in &inputs.skipped {
            eprintln!("portkey-guard: note: skipped {}: {}", s.file, s.reason);
        }
        if inputs.documents.is_empty() {
            return Err(OfflineFailure::NoObjects);
        }
        Ok(inputs)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
    Sarif,
    Junit,
    Github,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditOutput {
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
    #[error("no objects in the input: nothing was checked")]
    NoObjects,
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error(transparent)]
    Report(#[from] crate::policy_report::ReportError),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Runs a command.
pub fn run(command: &Command) -> ExitCode {
    let result = match command {
        Command::Check {
            policy,
            output,
            fail_on_warn,
            as_user,
            as_groups,
            input,
        } => {
            let requester = Requester {
                username: as_user.clone().unwrap_or_else(|| OFFLINE_USER.to_owned()),
                groups: as_groups.clone(),
            };
            check(policy, *output, *fail_on_warn, &requester, input)
        }
        Command::Audit {
            policy,
            output,
            fail_on_warn,
            report,
            cluster,
        } => audit(policy, *output, *fail_on_warn, *report, cluster),
        Command::Mutate { policy, input } => mutate(policy, input),
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

fn check(
    policy: &PolicyArg,
    output: Output,
    fail_on_warn: bool,
    requester: &Requester,
    input: &InputArgs,
) -> Result<u8, OfflineFailure> {
    let policy = policy.load()?;
    let inputs = input.read()?;
    let reports = admit_documents_as(&inputs.documents, &policy, requester)?;
    let report = Report {
        objects: &reports,
        skipped_files: &inputs.skipped,
        policy: &policy,
    };
    let text = match output {
        Output::Json => report::json(&report),
        Output::Sarif => report::sarif(&report),
        Output::Junit => report::junit(&report),
        Output::Github => report::github(&report),
        Output::Text => report::text(&report, stdout_colour()),
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(verdict_code(&reports, fail_on_warn))
}

/// Colour only for a terminal, and not with `NO_COLOR` set.
fn stdout_colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// [`EXIT_DENIED`] when an object is denied, or warned with
/// `--fail-on-warn`; else [`EXIT_ALLOWED`].
fn verdict_code(reports: &[ObjectReport], fail_on_warn: bool) -> u8 {
    let denied = reports.iter().any(|r| r.status == Status::Denied);
    let warned = reports
        .iter()
        .any(|r| r.with_action(Action::Warn).next().is_some());
    if denied || (fail_on_warn && warned) {
        EXIT_DENIED
    } else {
        EXIT_ALLOWED
    }
}

fn audit(
    policy: &PolicyArg,
    output: AuditOutput,
    fail_on_warn: bool,
    write_report: bool,
    cluster: &crate::cluster::ClusterArgs,
) -> Result<u8, OfflineFailure> {
    let policy = policy.load()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(OfflineFailure::Runtime)?;
    runtime.block_on(async {
        let (client, server) = crate::cluster::connect(cluster).await?;
        let inventory = crate::cluster::read_inventory(&client, &policy)
            .await
            .map_err(|e| e.at(&server))?;
        let audit = crate::audit::judge(&inventory, &policy);
        if !audit.not_served.is_empty() {
            let kinds: Vec<&str> = audit.not_served.iter().map(|k| k.info().name).collect();
            eprintln!(
                "portkey-guard: note: not served by this API server (CRD not installed), skipped: {}",
                kinds.join(", ")
            );
        }
        let report = Report {
            objects: &audit.objects,
            skipped_files: &[],
            policy: &policy,
        };
        let text = match output {
            AuditOutput::Json => report::audit_json(&report, &audit),
            AuditOutput::Text => {
                let mut text = report::text(&report, stdout_colour());
                for e in &audit.errors {
                    text.push_str(&format!("ERROR   {}: {}\n", e.object, e.error));
                }
                text
            }
        };
        std::io::stdout().write_all(text.as_bytes())?;
        if write_report {
            for written in crate::policy_report::write(&client, &audit, &policy.namespace).await? {
                eprintln!("portkey-guard: {written}");
            }
        }
        Ok(if audit.errors.is_empty() {
            verdict_code(&audit.objects, fail_on_warn)
        } else {
            EXIT_UNUSABLE
        })
    })
}

fn mutate(policy: &PolicyArg, input: &InputArgs) -> Result<u8, OfflineFailure> {
    let policy = policy.load()?;
    let inputs = input.read()?;
    let reports = admit_documents_as(&inputs.documents, &policy, &Requester::default())?;
    let mut out = String::new();
    for r in &reports {
        out.push_str("---\n");
        out.push_str(&crate::yaml::to_yaml(&r.stored));
    }
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(EXIT_ALLOWED)
}

fn print_policy(policy: &PolicyArg) -> Result<u8, OfflineFailure> {
    let policy = policy.load()?;
    std::io::stdout().write_all(policy.to_yaml().as_bytes())?;
    Ok(EXIT_ALLOWED)
}

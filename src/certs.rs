//! `portkey-guard certs`: a CA and a serving certificate for local runs.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct CertsArgs {
    /// Directory to write ca.crt, tls.crt and tls.key into.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(_args: &CertsArgs) -> ExitCode {
    ExitCode::from(2)
}

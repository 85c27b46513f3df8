#![forbid(unsafe_code)]

use clap::Parser;
use portkey_guard::cli::{run_offline, Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    run_offline(&Cli::parse().command)
}

#![forbid(unsafe_code)]

use clap::Parser;
use portkey_guard::cli::{run, Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    run(&Cli::parse().command)
}

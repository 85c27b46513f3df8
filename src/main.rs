#![forbid(unsafe_code)]

use clap::Parser;
use portkey_guard::cli::{run_offline, Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => portkey_guard::server::run(args),
        Command::Certs(args) => portkey_guard::certs::run(&args),
        command => run_offline(&command),
    }
}

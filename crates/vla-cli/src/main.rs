//! The `vla` command. This file only parses arguments and dispatches; the
//! work happens in the library crates.

mod cli;
mod commands;
mod malloc;

use clap::Parser;

fn main() -> std::process::ExitCode {
    malloc::tune();
    let cli = cli::Cli::parse();
    match commands::dispatch(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

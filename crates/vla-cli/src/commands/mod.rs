//! One module per subcommand; each turns parsed arguments into library calls.

mod collect;
mod eval;
mod kin;
mod record;
mod shared;
mod sim;
mod train;

use anyhow::{bail, Result};

use crate::cli::{Cli, Command};

/// Runs the parsed command.
pub fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Sim(args) => sim::run(&args),
        Command::Collect(args) => collect::run(&args),
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(&args),
        Command::Kin(command) => kin::run(command),
        Command::Run(_) => not_built("run", 6),
        Command::SimNode(_) => not_built("sim-node", 6),
    }
}

/// The honest answer of a subcommand whose issue has not landed yet.
fn not_built(name: &str, issue: u32) -> Result<()> {
    bail!("`vla {name}` is not built yet (tracked in issue #{issue}); nothing was run")
}

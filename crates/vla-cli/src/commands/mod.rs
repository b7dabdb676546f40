//! One module per subcommand; each turns parsed arguments into library calls.

use anyhow::{bail, Result};

use crate::cli::{Cli, Command};

mod train;

/// Runs the parsed command.
pub fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Sim(_) => not_built("sim", 4),
        Command::Collect(_) => not_built("collect", 4),
        Command::Train(args) => train::run(args),
        Command::Eval(_) => not_built("eval", 4),
        Command::Kin(_) => not_built("kin", 3),
        Command::Run(_) => not_built("run", 6),
        Command::SimNode(_) => not_built("sim-node", 6),
    }
}

/// The honest answer of a subcommand whose issue has not landed yet.
fn not_built(name: &str, issue: u32) -> Result<()> {
    bail!("`vla {name}` is not built yet (tracked in issue #{issue}); nothing was run")
}

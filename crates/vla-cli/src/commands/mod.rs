//! One module per subcommand; each turns parsed arguments into library calls.

mod collect;
mod eval;
mod kin;
mod record;
mod ros;
mod shared;
mod sim;
mod train;

use anyhow::Result;

use crate::cli::{Cli, Command};

/// Runs the parsed command.
pub fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Sim(args) => sim::run(&args),
        Command::Collect(args) => collect::run(&args),
        Command::Train(args) => train::run(*args),
        Command::Eval(args) => eval::run(&args),
        Command::Kin(command) => kin::run(command),
        Command::Run(args) => ros::run_controller(&args),
        Command::SimNode(args) => ros::run_sim_node(&args),
    }
}

//! `vla run` and `vla sim-node`: the ROS 2 nodes of `vla-ros`, present only
//! when built with the `ros2` feature. Without it both say so and how to
//! build them, and run nothing.

use anyhow::Result;

use crate::cli::{RosArgs, SimNodeArgs};

#[cfg(feature = "ros2")]
/// Runs the controller node (`vla run`), recording its policy steps to
/// rerun when asked. ROS arguments (`--ros-args ...`) are read by rcl from
/// the process arguments.
pub fn run_controller(args: &RosArgs) -> Result<()> {
    let root = super::shared::repo_root().ok();
    let viz = &args.viz;
    let sink = vla_viz::VizSink::from_flags(viz.rrd.clone(), viz.spawn, viz.connect.clone());
    Ok(vla_ros::controller::run(root.as_deref(), &sink)?)
}

#[cfg(feature = "ros2")]
/// Runs the simulator node (`vla sim-node`), recording to rerun when asked.
pub fn run_sim_node(args: &SimNodeArgs) -> Result<()> {
    use vla_sim::StepObserver;
    let root = super::shared::repo_root()?;
    let mut recorder = super::record::SimRecorder::from_args(&args.viz, "vla sim-node")?;
    let observer = recorder.as_mut().map(|r| r as &mut dyn StepObserver);
    vla_ros::sim_node::run(&root, observer)?;
    if let Some(rec) = recorder {
        rec.finish()?;
    }
    Ok(())
}

#[cfg(not(feature = "ros2"))]
fn needs_feature(name: &str) -> Result<()> {
    anyhow::bail!(
        "`vla {name}` is a ROS 2 node, and this binary was built without the `ros2` feature; \
         nothing was run. Build it against ROS 2 Jazzy: `scripts/setup-ros.sh && source scripts/ros-env.sh` \
         (or source your ROS 2 install), then `cargo build --release --features ros2` \
         (see README.md, \"ROS 2\")"
    )
}

#[cfg(not(feature = "ros2"))]
/// `vla run` without the `ros2` feature: an error saying how to build it.
pub fn run_controller(_args: &RosArgs) -> Result<()> {
    needs_feature("run")
}

#[cfg(not(feature = "ros2"))]
/// `vla sim-node` without the `ros2` feature: an error saying how to build it.
pub fn run_sim_node(_args: &SimNodeArgs) -> Result<()> {
    needs_feature("sim-node")
}

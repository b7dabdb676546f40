//! ROS 2 nodes over r2r, compiled with the `ros2` feature (off by default,
//! because r2r needs a ROS 2 installation to build; without the feature this
//! crate is empty).
//!
//! * [`controller`]: `vla run`, the node `vla_controller`: camera frames,
//!   `/joint_states`, `/vla/task` and `/vla/stop` in; joint commands
//!   (`trajectory_msgs/JointTrajectory` or `std_msgs/Float64MultiArray`),
//!   `/vla/status` and `/vla/action_tokens` out. All decisions are
//!   `vla-runtime`'s; this module only moves messages. [`record`] logs its
//!   policy steps to rerun (`vla run --rrd FILE`).
//! * [`sim_node`]: `vla sim-node`, the node `vla_sim`: the simulator as a
//!   stand-in arm, publishing camera images, `CameraInfo` and
//!   `/joint_states` and following the same joint command topics.
//! * [`params`], [`convert`], [`topics`]: ROS parameters with defaults,
//!   message conversions, the default names both nodes share.

#[cfg(feature = "ros2")]
pub mod controller;
#[cfg(feature = "ros2")]
pub mod convert;
pub mod error;
#[cfg(feature = "ros2")]
pub mod params;
#[cfg(feature = "ros2")]
pub mod record;
#[cfg(feature = "ros2")]
pub mod sim_node;
pub mod topics;

pub use error::RosError;

//! Default node, topic and controller names, shared by `vla run` and
//! `vla sim-node` so the pair finds each other with no arguments (as a
//! ros2_control arm and its controller do).

/// Node name of `vla run`.
pub const CONTROLLER_NODE: &str = "vla_controller";
/// Node name of `vla sim-node`.
pub const SIM_NODE: &str = "vla_sim";
/// Camera images (`sensor_msgs/msg/Image`).
pub const CAMERA_IMAGE: &str = "/camera/image_raw";
/// Wrist-camera images (`sensor_msgs/msg/Image`), for policies that read one.
pub const WRIST_IMAGE: &str = "/wrist_camera/image_raw";
/// Wrist-camera intrinsics (`sensor_msgs/msg/CameraInfo`).
pub const WRIST_INFO: &str = "/wrist_camera/camera_info";
/// Camera intrinsics (`sensor_msgs/msg/CameraInfo`).
pub const CAMERA_INFO: &str = "/camera/camera_info";
/// Measured joints (`sensor_msgs/msg/JointState`).
pub const JOINT_STATES: &str = "/joint_states";
/// Tasks (`std_msgs/msg/String`; empty stops).
pub const TASK: &str = "/vla/task";
/// Stop requests (`std_msgs/msg/Empty`, or `std_msgs/msg/Bool` with `stop_type:=bool`).
pub const STOP: &str = "/vla/stop";
/// The controller's status (`std_msgs/msg/String` holding one JSON object).
pub const STATUS: &str = "/vla/status";
/// The 8 action tokens of each policy step (`std_msgs/msg/Int32MultiArray`).
pub const ACTION_TOKENS: &str = "/vla/action_tokens";
/// Default JointTrajectoryController name (commands on `/<name>/joint_trajectory`).
pub const TRAJECTORY_CONTROLLER: &str = "joint_trajectory_controller";
/// Default forward position controller name (commands on `/<name>/commands`).
pub const FORWARD_CONTROLLER: &str = "forward_position_controller";

/// How joint commands are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandInterface {
    /// `trajectory_msgs/msg/JointTrajectory` on `/<controller>/joint_trajectory`.
    JointTrajectory,
    /// `std_msgs/msg/Float64MultiArray` on `/<controller>/commands`.
    ForwardPosition,
}

impl CommandInterface {
    /// Parses the `command_interface` parameter.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "joint_trajectory" => Some(Self::JointTrajectory),
            "forward_position" => Some(Self::ForwardPosition),
            _ => None,
        }
    }

    /// The default controller name for this interface.
    pub fn default_controller(self) -> &'static str {
        match self {
            Self::JointTrajectory => TRAJECTORY_CONTROLLER,
            Self::ForwardPosition => FORWARD_CONTROLLER,
        }
    }

    /// The command topic of `controller`.
    pub fn topic(self, controller: &str) -> String {
        let c = controller.trim_matches('/');
        match self {
            Self::JointTrajectory => format!("/{c}/joint_trajectory"),
            Self::ForwardPosition => format!("/{c}/commands"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_topics_follow_ros2_control_names() {
        let jt = CommandInterface::parse("joint_trajectory");
        assert_eq!(jt, Some(CommandInterface::JointTrajectory));
        assert_eq!(
            CommandInterface::JointTrajectory.topic(TRAJECTORY_CONTROLLER),
            "/joint_trajectory_controller/joint_trajectory"
        );
        assert_eq!(
            CommandInterface::ForwardPosition.topic("/arm_controller/"),
            "/arm_controller/commands"
        );
        assert_eq!(CommandInterface::parse("effort"), None);
    }
}

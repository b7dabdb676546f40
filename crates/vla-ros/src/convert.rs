//! Conversions between ROS messages and the project's types. Pure
//! functions, so each is unit-tested without a running ROS graph.

use std::time::{SystemTime, UNIX_EPOCH};

use r2r::builtin_interfaces::msg::{Duration as RosDuration, Time};
use r2r::sensor_msgs::msg::{CameraInfo, Image, JointState as JointStateMsg};
use r2r::std_msgs::msg::{Float64MultiArray, Header, Int32MultiArray};
use r2r::trajectory_msgs::msg::{JointTrajectory, JointTrajectoryPoint};
use vla_core::{ActionTokens, JointCommand, JointState, RgbFrame};
use vla_render::Camera;
use vla_runtime::ImageIn;

/// A message stamp in seconds.
pub fn stamp_secs(t: &Time) -> f64 {
    f64::from(t.sec) + f64::from(t.nanosec) * 1e-9
}

/// Seconds as a message stamp (clamped into the message's range).
pub fn time_from_secs(secs: f64) -> Time {
    let s = if secs.is_finite() { secs.max(0.0) } else { 0.0 };
    let whole = s.floor().min(f64::from(i32::MAX));
    Time {
        sec: whole as i32,
        nanosec: (((s - whole) * 1e9) as u32).min(999_999_999),
    }
}

/// The wall clock as a message stamp.
pub fn wall_time() -> Time {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    time_from_secs(secs)
}

/// Seconds as a message duration.
pub fn duration_from_secs(secs: f64) -> RosDuration {
    let t = time_from_secs(secs);
    RosDuration {
        sec: t.sec,
        nanosec: t.nanosec,
    }
}

/// A `sensor_msgs/Image` as the runtime's image input (checked there).
pub fn image_in(msg: &Image) -> ImageIn<'_> {
    ImageIn {
        width_px: msg.width,
        height_px: msg.height,
        encoding: &msg.encoding,
        step_bytes: msg.step as usize,
        data: &msg.data,
    }
}

/// A JointTrajectoryController command: one point, `time_from_start_secs`
/// ahead, positions only; a zero header stamp means "start now".
pub fn trajectory(cmd: &JointCommand, time_from_start_secs: f64) -> JointTrajectory {
    JointTrajectory {
        header: Header::default(),
        joint_names: cmd.names.clone(),
        points: vec![JointTrajectoryPoint {
            positions: cmd.positions_rad.clone(),
            time_from_start: duration_from_secs(time_from_start_secs),
            ..JointTrajectoryPoint::default()
        }],
    }
}

/// A forward position controller command: positions in the controller's
/// joint order (which must be the command's `names` order).
pub fn forward(cmd: &JointCommand) -> Float64MultiArray {
    Float64MultiArray {
        data: cmd.positions_rad.clone(),
        ..Float64MultiArray::default()
    }
}

/// The 8 action tokens.
pub fn tokens_msg(tokens: &ActionTokens) -> Int32MultiArray {
    Int32MultiArray {
        data: tokens
            .ids()
            .iter()
            .map(|&t| i32::try_from(t).unwrap_or(i32::MAX))
            .collect(),
        ..Int32MultiArray::default()
    }
}

/// The joint positions a trajectory asks for: its last point (where the
/// motion ends), by name.
pub fn from_trajectory(msg: &JointTrajectory) -> Result<(Vec<String>, Vec<f64>), String> {
    let point = msg
        .points
        .last()
        .ok_or_else(|| "joint trajectory has no points".to_string())?;
    if point.positions.len() != msg.joint_names.len() {
        return Err(format!(
            "joint trajectory names {} joints but its point has {} positions",
            msg.joint_names.len(),
            point.positions.len()
        ));
    }
    Ok((msg.joint_names.clone(), point.positions.clone()))
}

/// The joint positions of a forward command, named by the controller's joints.
pub fn from_forward(
    msg: &Float64MultiArray,
    joints: &[String],
) -> Result<(Vec<String>, Vec<f64>), String> {
    if msg.data.len() != joints.len() {
        return Err(format!(
            "forward command has {} values, the controller has {} joints ({})",
            msg.data.len(),
            joints.len(),
            joints.join(", ")
        ));
    }
    Ok((joints.to_vec(), msg.data.clone()))
}

/// A `sensor_msgs/JointState` of measured positions.
pub fn joint_state_msg(js: &JointState, stamp: Time) -> JointStateMsg {
    JointStateMsg {
        header: Header {
            stamp,
            frame_id: String::new(),
        },
        name: js.names().to_vec(),
        position: js.positions_rad().to_vec(),
        ..JointStateMsg::default()
    }
}

/// An RGB8 `sensor_msgs/Image`.
pub fn image_msg(frame: &RgbFrame, stamp: Time, frame_id: &str) -> Image {
    let rgb = frame.to_rgb8();
    Image {
        header: Header {
            stamp,
            frame_id: frame_id.into(),
        },
        height: rgb.height_px(),
        width: rgb.width_px(),
        encoding: "rgb8".into(),
        is_bigendian: 0,
        step: rgb.width_px() * 3,
        data: rgb.data().to_vec(),
    }
}

/// The `sensor_msgs/CameraInfo` of a pinhole camera without distortion.
pub fn camera_info(camera: &Camera, stamp: Time, frame_id: &str) -> CameraInfo {
    let k = camera.intrinsics_k();
    CameraInfo {
        header: Header {
            stamp,
            frame_id: frame_id.into(),
        },
        height: camera.height_px,
        width: camera.width_px,
        distortion_model: "plumb_bob".into(),
        d: vec![0.0; 5],
        k: k.to_vec(),
        r: vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p: vec![
            k[0], k[1], k[2], 0.0, k[3], k[4], k[5], 0.0, k[6], k[7], k[8], 0.0,
        ],
        ..CameraInfo::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vla_core::PixelEncoding;

    fn cmd() -> JointCommand {
        JointCommand::hold(vec!["a".into(), "b".into()], vec![0.5, -1.25], 3.0)
    }

    #[test]
    fn stamps_round_trip() {
        let t = time_from_secs(12.25);
        assert_eq!((t.sec, t.nanosec), (12, 250_000_000));
        assert_eq!(stamp_secs(&t), 12.25);
        assert_eq!(time_from_secs(f64::NAN).sec, 0);
        assert_eq!(time_from_secs(-3.0).sec, 0);
    }

    #[test]
    fn trajectory_commands_carry_names_and_one_point() {
        let t = trajectory(&cmd(), 0.02);
        assert_eq!(t.joint_names, vec!["a", "b"]);
        assert_eq!(t.points.len(), 1);
        assert_eq!(t.points[0].positions, vec![0.5, -1.25]);
        assert_eq!(t.points[0].time_from_start.nanosec, 20_000_000);
        assert_eq!(t.header.stamp.sec, 0, "zero stamp: start now");
        assert_eq!(from_trajectory(&t).unwrap().1, vec![0.5, -1.25]);
        let mut bad = t.clone();
        bad.points[0].positions.pop();
        assert!(from_trajectory(&bad).is_err());
        bad.points.clear();
        assert!(from_trajectory(&bad).is_err());
    }

    #[test]
    fn forward_commands_are_positions_in_joint_order() {
        let f = forward(&cmd());
        assert_eq!(f.data, vec![0.5, -1.25]);
        let joints = vec!["a".to_string(), "b".to_string()];
        assert_eq!(from_forward(&f, &joints).unwrap().0, joints);
        assert!(from_forward(&f, &joints[..1]).is_err());
    }

    #[test]
    fn images_round_trip_through_the_runtime_input() {
        let frame = RgbFrame::new(2, 1, PixelEncoding::Bgr8, vec![1, 2, 3, 4, 5, 6]).unwrap();
        let msg = image_msg(&frame, time_from_secs(1.0), "camera");
        assert_eq!((msg.width, msg.height, msg.step), (2, 1, 6));
        assert_eq!(msg.data, vec![3, 2, 1, 6, 5, 4]);
        let input = image_in(&msg);
        let back = vla_runtime::input::frame_from_image(&input, None, None).unwrap();
        assert_eq!(back.data(), msg.data.as_slice());
    }

    #[test]
    fn tokens_are_int32() {
        let t = ActionTokens([1, 2, 3, 4, 5, 6, 7, 255]);
        assert_eq!(tokens_msg(&t).data, vec![1, 2, 3, 4, 5, 6, 7, 255]);
    }
}

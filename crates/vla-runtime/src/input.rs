//! Checking what arrives from outside before the loop uses it: camera
//! images (encoding, buffer size, expected size; resized to the policy's
//! input), joint states (lengths, NaN, duplicate, missing or unknown names)
//! and task strings (size limit; empty means stop).

use vla_core::{Instruction, JointState, PixelEncoding, RgbFrame};

use crate::RuntimeError;

/// A camera image as transports carry it (the fields of `sensor_msgs/Image`).
#[derive(Debug, Clone, Copy)]
pub struct ImageIn<'a> {
    /// Width, pixels.
    pub width_px: u32,
    /// Height, pixels.
    pub height_px: u32,
    /// Encoding name: rgb8, bgr8, rgba8, bgra8 or mono8.
    pub encoding: &'a str,
    /// Bytes per row including padding.
    pub step_bytes: usize,
    /// The pixels, row-major, top row first.
    pub data: &'a [u8],
}

/// Checks an image and turns it into a packed RGB8 frame, resized to
/// `resize_to` (width, height) when given. `expected` rejects any other size.
pub fn frame_from_image(
    image: &ImageIn<'_>,
    expected: Option<(u32, u32)>,
    resize_to: Option<(u32, u32)>,
) -> Result<RgbFrame, RuntimeError> {
    let bad = |m: String| RuntimeError::Frame(m);
    let encoding: PixelEncoding = image.encoding.parse().map_err(|e| bad(format!("{e}")))?;
    if let Some((w, h)) = expected {
        if (image.width_px, image.height_px) != (w, h) {
            return Err(bad(format!(
                "size {}x{} differs from the expected {w}x{h}",
                image.width_px, image.height_px
            )));
        }
    }
    let frame = RgbFrame::from_strided(
        image.width_px,
        image.height_px,
        encoding,
        image.step_bytes,
        image.data,
    )
    .map_err(|e| bad(e.to_string()))?;
    let rgb = match resize_to {
        Some((w, h)) => frame.resized_rgb8(w, h),
        None => frame.resized_rgb8(frame.width_px(), frame.height_px()),
    };
    rgb.map_err(|e| bad(e.to_string()))
}

/// Checks a joint state and picks the chain's positions out of it.
///
/// Rejected: names and positions of different lengths, duplicate names,
/// NaN or infinite positions, a name not in `known_joints` (when that list
/// is non-empty), a chain joint that is missing.
pub fn chain_positions(
    names: &[String],
    positions_rad: &[f64],
    stamp_secs: f64,
    chain_joints: &[String],
    known_joints: &[String],
) -> Result<(JointState, Vec<f64>), RuntimeError> {
    let bad = |m: String| RuntimeError::JointState(m);
    let state = JointState::new(names.to_vec(), positions_rad.to_vec(), stamp_secs)
        .map_err(|e| bad(e.to_string()))?;
    if !known_joints.is_empty() {
        if let Some(unknown) = names.iter().find(|n| !known_joints.contains(n)) {
            return Err(bad(format!(
                "unknown joint {unknown:?} (the robot's joints: {})",
                known_joints.join(", ")
            )));
        }
    }
    let q = chain_joints
        .iter()
        .map(|name| {
            state
                .position_of(name)
                .ok_or_else(|| bad(format!("joint {name:?} is missing")))
        })
        .collect::<Result<Vec<f64>, _>>()?;
    Ok((state, q))
}

/// Checks a task string: `Ok(None)` for an empty (or blank) string, which
/// means stop; an error for one over [`vla_core::MAX_INSTRUCTION_BYTES`].
pub fn parse_task(text: &str) -> Result<Option<Instruction>, RuntimeError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    Instruction::new(text)
        .map(Some)
        .map_err(|e| RuntimeError::Task(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn image<'a>(w: u32, h: u32, enc: &'a str, data: &'a [u8]) -> ImageIn<'a> {
        let c = data.len() / (w as usize * h as usize).max(1);
        ImageIn {
            width_px: w,
            height_px: h,
            encoding: enc,
            step_bytes: w as usize * c,
            data,
        }
    }

    #[test]
    fn frames_of_every_supported_encoding_become_rgb8_of_the_policy_size() {
        for (enc, c) in [
            ("rgb8", 3),
            ("bgr8", 3),
            ("rgba8", 4),
            ("bgra8", 4),
            ("mono8", 1),
        ] {
            let data = vec![100u8; 8 * 6 * c];
            let f = frame_from_image(&image(8, 6, enc, &data), None, Some((4, 4))).unwrap();
            assert_eq!((f.width_px(), f.height_px()), (4, 4));
            assert_eq!(f.encoding(), PixelEncoding::Rgb8);
            assert!(f.data().iter().all(|&v| v == 100), "{enc}");
        }
    }

    #[test]
    fn bgr_channels_are_swapped() {
        let f = frame_from_image(&image(1, 1, "bgr8", &[1, 2, 3]), None, None).unwrap();
        assert_eq!(f.data(), &[3, 2, 1]);
    }

    #[test]
    fn wrong_encoding_size_or_buffer_is_rejected_with_a_reason() {
        let data = vec![0u8; 8 * 6 * 3];
        let err = frame_from_image(&image(8, 6, "yuv422", &data), None, None).unwrap_err();
        assert!(err.to_string().contains("yuv422"), "{err}");
        let err = frame_from_image(&image(8, 6, "rgb8", &data[1..]), None, None).unwrap_err();
        assert!(err.to_string().contains("bytes"), "{err}");
        let err =
            frame_from_image(&image(8, 6, "rgb8", &data), Some((640, 480)), None).unwrap_err();
        assert!(err.to_string().contains("640x480"), "{err}");
        let zero = ImageIn {
            width_px: 0,
            height_px: 6,
            encoding: "rgb8",
            step_bytes: 0,
            data: &[],
        };
        assert!(frame_from_image(&zero, None, None).is_err());
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn joint_states_pick_chain_joints_in_chain_order() {
        let chain = names(&["a", "b"]);
        let known = names(&["a", "b", "finger"]);
        let (_, q) = chain_positions(
            &names(&["finger", "b", "a"]),
            &[0.04, 2.0, 1.0],
            0.0,
            &chain,
            &known,
        )
        .unwrap();
        assert_eq!(q, vec![1.0, 2.0]);
    }

    #[test]
    fn bad_joint_states_are_rejected_with_a_reason() {
        let chain = names(&["a", "b"]);
        let known = names(&["a", "b"]);
        let cases: [(&[&str], &[f64], &str); 5] = [
            (&["a", "b"], &[0.0, f64::NAN], "not finite"),
            (&["a"], &[0.0], "\"b\" is missing"),
            (
                &["a", "b", "elbow"],
                &[0.0, 0.0, 0.0],
                "unknown joint \"elbow\"",
            ),
            (&["a", "b"], &[0.0], "names but"),
            (&["a", "a"], &[0.0, 0.0], "more than once"),
        ];
        for (n, q, why) in cases {
            let err = chain_positions(&names(n), q, 0.0, &chain, &known).unwrap_err();
            assert!(err.to_string().contains(why), "{err} lacks {why}");
        }
    }

    #[test]
    fn tasks_empty_means_stop_and_oversized_is_rejected() {
        assert_eq!(parse_task("  ").unwrap(), None);
        assert_eq!(
            parse_task(" pick up the cube ").unwrap().unwrap().as_str(),
            "pick up the cube"
        );
        let err = parse_task(&"x".repeat(vla_core::MAX_INSTRUCTION_BYTES + 1)).unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
    }
}

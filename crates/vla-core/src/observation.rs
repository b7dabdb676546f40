//! What the robot perceives: camera frames, joint states and the task text.
//!
//! Every constructor validates its input, so a value of these types is known
//! to be well formed: a frame's buffer matches its size and encoding, a joint
//! state has as many finite positions as names, an instruction is non-empty
//! and under [`MAX_INSTRUCTION_BYTES`].

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// Longest accepted instruction, in bytes (UTF-8).
pub const MAX_INSTRUCTION_BYTES: usize = 1024;

/// Largest accepted image side, in pixels.
pub const MAX_IMAGE_SIDE_PX: u32 = 8192;

/// Pixel layouts accepted from cameras (the `sensor_msgs/Image` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelEncoding {
    /// 8-bit red, green, blue.
    Rgb8,
    /// 8-bit blue, green, red.
    Bgr8,
    /// 8-bit red, green, blue, alpha.
    Rgba8,
    /// 8-bit blue, green, red, alpha.
    Bgra8,
    /// 8-bit grey.
    Mono8,
}

impl PixelEncoding {
    /// Bytes per pixel.
    pub fn channels(self) -> usize {
        match self {
            Self::Rgb8 | Self::Bgr8 => 3,
            Self::Rgba8 | Self::Bgra8 => 4,
            Self::Mono8 => 1,
        }
    }

    /// The ROS name of the encoding.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rgb8 => "rgb8",
            Self::Bgr8 => "bgr8",
            Self::Rgba8 => "rgba8",
            Self::Bgra8 => "bgra8",
            Self::Mono8 => "mono8",
        }
    }
}

impl fmt::Display for PixelEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PixelEncoding {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rgb8" => Ok(Self::Rgb8),
            "bgr8" => Ok(Self::Bgr8),
            "rgba8" => Ok(Self::Rgba8),
            "bgra8" => Ok(Self::Bgra8),
            "mono8" => Ok(Self::Mono8),
            other => Err(CoreError::UnsupportedEncoding(other.to_string())),
        }
    }
}

/// A camera image whose buffer is known to match its size and encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RgbFrame {
    width_px: u32,
    height_px: u32,
    encoding: PixelEncoding,
    data: Vec<u8>,
}

impl RgbFrame {
    /// Wraps a tightly packed (no row padding) pixel buffer, checking its length.
    pub fn new(
        width_px: u32,
        height_px: u32,
        encoding: PixelEncoding,
        data: Vec<u8>,
    ) -> Result<Self, CoreError> {
        if width_px == 0
            || height_px == 0
            || width_px > MAX_IMAGE_SIDE_PX
            || height_px > MAX_IMAGE_SIDE_PX
        {
            return Err(CoreError::ImageDimensions {
                width: width_px,
                height: height_px,
                max: MAX_IMAGE_SIDE_PX,
            });
        }
        let expected = width_px as usize * height_px as usize * encoding.channels();
        if data.len() != expected {
            return Err(CoreError::ImageSize {
                width: width_px,
                height: height_px,
                encoding: encoding.to_string(),
                expected,
                actual: data.len(),
            });
        }
        Ok(Self {
            width_px,
            height_px,
            encoding,
            data,
        })
    }

    /// Wraps a buffer whose rows may be padded (`step_bytes` per row, as in
    /// `sensor_msgs/Image`), dropping the padding.
    pub fn from_strided(
        width_px: u32,
        height_px: u32,
        encoding: PixelEncoding,
        step_bytes: usize,
        data: &[u8],
    ) -> Result<Self, CoreError> {
        if width_px == 0
            || height_px == 0
            || width_px > MAX_IMAGE_SIDE_PX
            || height_px > MAX_IMAGE_SIDE_PX
        {
            return Err(CoreError::ImageDimensions {
                width: width_px,
                height: height_px,
                max: MAX_IMAGE_SIDE_PX,
            });
        }
        let row_bytes = width_px as usize * encoding.channels();
        if step_bytes < row_bytes || data.len() != step_bytes * height_px as usize {
            return Err(CoreError::ImageSize {
                width: width_px,
                height: height_px,
                encoding: encoding.to_string(),
                expected: step_bytes.max(row_bytes) * height_px as usize,
                actual: data.len(),
            });
        }
        let mut packed = Vec::with_capacity(row_bytes * height_px as usize);
        for row in data.chunks_exact(step_bytes) {
            packed.extend_from_slice(&row[..row_bytes]);
        }
        Self::new(width_px, height_px, encoding, packed)
    }

    /// Width in pixels.
    pub fn width_px(&self) -> u32 {
        self.width_px
    }

    /// Height in pixels.
    pub fn height_px(&self) -> u32 {
        self.height_px
    }

    /// Pixel layout of [`Self::data`].
    pub fn encoding(&self) -> PixelEncoding {
        self.encoding
    }

    /// The packed pixel bytes, row-major, top row first.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The same image as packed RGB8 (alpha dropped, grey replicated).
    pub fn to_rgb8(&self) -> RgbFrame {
        let n = self.width_px as usize * self.height_px as usize;
        let mut out = Vec::with_capacity(n * 3);
        let c = self.encoding.channels();
        for px in self.data.chunks_exact(c) {
            match self.encoding {
                PixelEncoding::Rgb8 | PixelEncoding::Rgba8 => out.extend_from_slice(&px[..3]),
                PixelEncoding::Bgr8 | PixelEncoding::Bgra8 => {
                    out.extend_from_slice(&[px[2], px[1], px[0]])
                }
                PixelEncoding::Mono8 => out.extend_from_slice(&[px[0], px[0], px[0]]),
            }
        }
        RgbFrame {
            width_px: self.width_px,
            height_px: self.height_px,
            encoding: PixelEncoding::Rgb8,
            data: out,
        }
    }

    /// Resizes to `width_px` x `height_px` RGB8 by area averaging (box filter)
    /// when shrinking and bilinear sampling when growing.
    pub fn resized_rgb8(&self, width_px: u32, height_px: u32) -> Result<RgbFrame, CoreError> {
        let src = self.to_rgb8();
        if width_px == src.width_px && height_px == src.height_px {
            return Ok(src);
        }
        if width_px == 0 || height_px == 0 {
            return Err(CoreError::ImageDimensions {
                width: width_px,
                height: height_px,
                max: MAX_IMAGE_SIDE_PX,
            });
        }
        let (sw, sh) = (src.width_px as usize, src.height_px as usize);
        let (dw, dh) = (width_px as usize, height_px as usize);
        let mut out = vec![0u8; dw * dh * 3];
        let sx = sw as f32 / dw as f32;
        let sy = sh as f32 / dh as f32;
        for y in 0..dh {
            let y0 = y as f32 * sy;
            let y1 = ((y + 1) as f32 * sy).max(y0 + 1.0);
            for x in 0..dw {
                let x0 = x as f32 * sx;
                let x1 = ((x + 1) as f32 * sx).max(x0 + 1.0);
                // Area average over the source footprint [x0, x1) x [y0, y1).
                let mut acc = [0f32; 3];
                let mut wsum = 0f32;
                let mut yy = y0.floor() as usize;
                while (yy as f32) < y1 && yy < sh {
                    let wy = ((yy + 1) as f32).min(y1) - (yy as f32).max(y0);
                    let mut xx = x0.floor() as usize;
                    while (xx as f32) < x1 && xx < sw {
                        let wx = ((xx + 1) as f32).min(x1) - (xx as f32).max(x0);
                        let w = wx.max(0.0) * wy.max(0.0);
                        let p = &src.data[(yy * sw + xx) * 3..(yy * sw + xx) * 3 + 3];
                        for k in 0..3 {
                            acc[k] += w * p[k] as f32;
                        }
                        wsum += w;
                        xx += 1;
                    }
                    yy += 1;
                }
                let o = (y * dw + x) * 3;
                for k in 0..3 {
                    out[o + k] = (acc[k] / wsum.max(1e-6)).round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        RgbFrame::new(width_px, height_px, PixelEncoding::Rgb8, out)
    }
}

/// Measured joint positions, validated: same length as names, finite, no
/// duplicate names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JointState {
    names: Vec<String>,
    positions_rad: Vec<f64>,
    /// Time of the measurement, seconds on the sender's clock.
    pub stamp_secs: f64,
}

impl JointState {
    /// Checks and wraps a joint state.
    pub fn new(
        names: Vec<String>,
        positions_rad: Vec<f64>,
        stamp_secs: f64,
    ) -> Result<Self, CoreError> {
        if names.len() != positions_rad.len() {
            return Err(CoreError::LengthMismatch {
                what: "joint state".into(),
                left: names.len(),
                right: positions_rad.len(),
            });
        }
        let mut seen = HashSet::with_capacity(names.len());
        for (name, &q) in names.iter().zip(&positions_rad) {
            if !seen.insert(name.as_str()) {
                return Err(CoreError::DuplicateJoint(name.clone()));
            }
            if !q.is_finite() {
                return Err(CoreError::NonFinite {
                    what: format!("position of joint {name}"),
                    value: q,
                });
            }
        }
        if !stamp_secs.is_finite() {
            return Err(CoreError::NonFinite {
                what: "joint state stamp".into(),
                value: stamp_secs,
            });
        }
        Ok(Self {
            names,
            positions_rad,
            stamp_secs,
        })
    }

    /// Joint names, in the sender's order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Joint positions in radians (metres for prismatic joints).
    pub fn positions_rad(&self) -> &[f64] {
        &self.positions_rad
    }

    /// Position of the named joint, if present.
    pub fn position_of(&self, name: &str) -> Option<f64> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| self.positions_rad[i])
    }
}

/// A natural-language task, trimmed, non-empty and at most
/// [`MAX_INSTRUCTION_BYTES`] long.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Instruction(String);

impl Instruction {
    /// Validates a task string.
    pub fn new(text: &str) -> Result<Self, CoreError> {
        if text.len() > MAX_INSTRUCTION_BYTES {
            return Err(CoreError::InstructionTooLong {
                len: text.len(),
                max: MAX_INSTRUCTION_BYTES,
            });
        }
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(CoreError::EmptyInstruction);
        }
        Ok(Self(trimmed.to_string()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Instruction {
    type Error = CoreError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<Instruction> for String {
    fn from(value: Instruction) -> Self {
        value.0
    }
}

impl fmt::Display for Instruction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_rejects_wrong_buffer_length() {
        let err = RgbFrame::new(4, 4, PixelEncoding::Rgb8, vec![0; 47]).unwrap_err();
        assert!(matches!(
            err,
            CoreError::ImageSize {
                expected: 48,
                actual: 47,
                ..
            }
        ));
        assert!(RgbFrame::new(0, 4, PixelEncoding::Rgb8, vec![]).is_err());
    }

    #[test]
    fn unknown_encoding_is_an_error() {
        assert!("yuv422".parse::<PixelEncoding>().is_err());
        assert_eq!(
            "bgra8".parse::<PixelEncoding>().unwrap(),
            PixelEncoding::Bgra8
        );
    }

    #[test]
    fn bgr_and_mono_convert_to_rgb() {
        let f = RgbFrame::new(1, 1, PixelEncoding::Bgra8, vec![1, 2, 3, 255]).unwrap();
        assert_eq!(f.to_rgb8().data(), &[3, 2, 1]);
        let g = RgbFrame::new(1, 1, PixelEncoding::Mono8, vec![9]).unwrap();
        assert_eq!(g.to_rgb8().data(), &[9, 9, 9]);
    }

    #[test]
    fn strided_rows_drop_padding() {
        let data = vec![1, 2, 3, 0, 4, 5, 6, 0];
        let f = RgbFrame::from_strided(1, 2, PixelEncoding::Rgb8, 4, &data).unwrap();
        assert_eq!(f.data(), &[1, 2, 3, 4, 5, 6]);
        assert!(RgbFrame::from_strided(1, 2, PixelEncoding::Rgb8, 2, &data).is_err());
        // Zero-sized images (as a malformed message may claim) are errors, not panics.
        assert!(RgbFrame::from_strided(0, 2, PixelEncoding::Rgb8, 0, &[]).is_err());
        assert!(RgbFrame::from_strided(2, 0, PixelEncoding::Rgb8, 6, &[]).is_err());
    }

    #[test]
    fn resize_by_area_keeps_mean_colour() {
        // 4x4 image, left half black, right half white -> 2x2 keeps halves.
        let mut data = Vec::new();
        for _y in 0..4 {
            for x in 0..4 {
                let v = if x < 2 { 0 } else { 200 };
                data.extend_from_slice(&[v, v, v]);
            }
        }
        let f = RgbFrame::new(4, 4, PixelEncoding::Rgb8, data).unwrap();
        let r = f.resized_rgb8(2, 2).unwrap();
        assert_eq!(r.data(), &[0, 0, 0, 200, 200, 200, 0, 0, 0, 200, 200, 200]);
        let one = f.resized_rgb8(1, 1).unwrap();
        assert_eq!(one.data(), &[100, 100, 100]);
        let up = f.resized_rgb8(8, 8).unwrap();
        assert_eq!(up.width_px(), 8);
    }

    #[test]
    fn joint_state_validation() {
        let names = vec!["a".to_string(), "b".to_string()];
        assert!(JointState::new(names.clone(), vec![0.0, f64::NAN], 0.0).is_err());
        assert!(JointState::new(names.clone(), vec![0.0], 0.0).is_err());
        assert!(JointState::new(vec!["a".into(), "a".into()], vec![0.0, 0.0], 0.0).is_err());
        let js = JointState::new(names, vec![0.5, -0.5], 1.0).unwrap();
        assert_eq!(js.position_of("b"), Some(-0.5));
        assert_eq!(js.position_of("c"), None);
    }

    #[test]
    fn instruction_validation() {
        assert_eq!(Instruction::new("   "), Err(CoreError::EmptyInstruction));
        assert!(Instruction::new(&"x".repeat(MAX_INSTRUCTION_BYTES + 1)).is_err());
        assert_eq!(
            Instruction::new("  pick up the cube ").unwrap().as_str(),
            "pick up the cube"
        );
        let parsed: Result<Instruction, _> = serde_json::from_str("\"\"");
        assert!(parsed.is_err());
    }
}

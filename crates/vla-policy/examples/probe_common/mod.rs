//! What the encoder probes (`aux_probe`, `keypoint_probe`) share: their
//! command line (`POLICY_DIR DATA_DIR [EVERY]`), loading the checkpoint, the
//! `vla collect` folder and the text encoder, and one frame as the network's
//! un-augmented image input.

// Each example uses a part of this.
#![allow(dead_code)]

use candle_core::{Device, Tensor};
use vla_policy::{checkpoint, data, image, TextEncoder};

/// A loaded checkpoint, data set and text encoder.
pub struct ProbeSetup {
    pub policy_dir: String,
    pub cfg: vla_policy::PolicyConfig,
    pub model: vla_policy::VlaModel,
    pub ds: data::Dataset,
    pub text: TextEncoder,
    /// Probe every this many frames (default 10).
    pub every: usize,
    pub dev: Device,
}

impl ProbeSetup {
    /// Parses `NAME POLICY_DIR DATA_DIR [EVERY]` and loads everything, or
    /// prints the usage and exits with status 2.
    pub fn from_args(name: &str) -> Self {
        let args: Vec<String> = std::env::args().collect();
        if args.len() < 3 {
            eprintln!("usage: {name} POLICY_DIR DATA_DIR [EVERY]");
            std::process::exit(2);
        }
        let dev = Device::Cpu;
        let (cfg, _, model) = checkpoint::load(std::path::Path::new(&args[1]), &dev).unwrap();
        let ds = data::load_dir(std::path::Path::new(&args[2]), cfg.model.image_size_px).unwrap();
        let text = TextEncoder::from_default_location(None, &dev).unwrap();
        let every: usize = args
            .get(3)
            .map_or(10, |s| s.parse().expect("EVERY is a number"));
        Self {
            policy_dir: args[1].clone(),
            cfg,
            model,
            ds,
            text,
            every: every.max(1),
            dev,
        }
    }

    /// `(1, 3, side, side)`: one sample's frame as the network sees it at
    /// run time (no augmentation).
    pub fn image(&self, s: &data::Sample) -> Tensor {
        let side = self.cfg.model.image_size_px;
        let mut buf = vec![0f32; 3 * side * side];
        image::write_chw(
            &s.rgb,
            side,
            None::<(&image::Augment, &mut rand::rngs::ThreadRng)>,
            &mut buf,
        );
        Tensor::from_vec(buf, (1, 3, side, side), &self.dev).unwrap()
    }
}

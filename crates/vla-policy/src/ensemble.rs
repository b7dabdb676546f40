//! Ensembles: several networks of one shape that decode the 8 action
//! tokens together.
//!
//! A policy folder's `config.json` may name further policy folders in
//! `ensemble` (relative to it). Each member is a network trained with the
//! same inputs, tokenizer and normalisation (a different seed or
//! augmentation); all members read the same preprocessed observation, each
//! encodes it into its own memory, and at every token position the bin is
//! chosen (by the policy's [`crate::decoding`] rule) from the mean of the
//! members' distributions, then fed back to every member. Averaging
//! distributions rather than bins keeps the decoding autoregressive and the
//! median rule meaningful, and lets members that are unsure defer to those
//! that are not. Cost: one encoder and decoder pass per member.

use std::path::{Path, PathBuf};

use candle_core::Device;

use crate::checkpoint::{self, PolicyConfig};
use crate::error::{Result, VlaPolicyError};
use crate::model::VlaModel;

/// The folder of ensemble member `name` of the policy in `dir`.
pub fn member_dir(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// Checks that `member` (read from `member_path`) can decode together with
/// `primary`: the same network shape, tokenizer (bounds included), text
/// encoder, joint and TCP inputs, crop and decoding rule, and no ensemble of
/// its own. Only the training summary may differ.
pub fn check_member(
    primary: &PolicyConfig,
    member: &PolicyConfig,
    member_path: &Path,
) -> Result<()> {
    let checks = [
        (
            "model shape (config.json `model`)",
            member.model == primary.model,
        ),
        (
            "tokenizer (config.json `tokenizer`)",
            member.tokenizer == primary.tokenizer,
        ),
        ("text encoder", member.text_encoder == primary.text_encoder),
        (
            "joint-state input (config.json `state`)",
            member.state == primary.state,
        ),
        ("TCP input (config.json `tcp`)", member.tcp == primary.tcp),
        (
            "hand crop (config.json `crop`)",
            member.crop == primary.crop,
        ),
        ("decoding rule", member.decoding == primary.decoding),
    ];
    if let Some((what, _)) = checks.iter().find(|(_, same)| !same) {
        return Err(VlaPolicyError::Config(format!(
            "ensemble member {}: its {what} differs from the policy's; members must share \
             shape, tokenizer, inputs and decoding",
            member_path.display()
        )));
    }
    if !member.ensemble.is_empty() {
        return Err(VlaPolicyError::Config(format!(
            "ensemble member {} names an ensemble of its own; members must be single networks",
            member_path.display()
        )));
    }
    Ok(())
}

/// Loads the members `primary.ensemble` names, in order, for inference.
pub fn load_members(
    dir: &Path,
    primary: &PolicyConfig,
    device: &Device,
) -> Result<Vec<(PolicyConfig, VlaModel)>> {
    primary
        .ensemble
        .iter()
        .map(|name| {
            let path = member_dir(dir, name);
            let (cfg, model) = checkpoint::load_for_inference(&path, device)?;
            check_member(primary, &cfg, &path)?;
            Ok((cfg, model))
        })
        .collect()
}

//! `vla train`: load demonstrations, train the policy, print a summary.

use std::io::Write;

use anyhow::{Context, Result};
use candle_core::Device;
use vla_policy::{TextEncoder, TrainOptions};

use crate::cli::TrainArgs;

/// The camera of a suite's scene as the hand crop sees it: its pose in the
/// robot's base frame and its intrinsics.
fn crop_camera(suite: &str) -> Result<vla_policy::crop::CropCamera> {
    let root = super::shared::repo_root()?;
    let suite = vla_sim::TaskSuite::load(suite, &root)
        .with_context(|| format!("loading suite {suite} for its camera"))?;
    let camera = vla_sim::render::scene_camera(&suite.scene);
    let base_from_camera = suite.scene.robot.world_from_base().inverse() * camera.world_from_camera;
    Ok(vla_policy::crop::CropCamera::new(
        &base_from_camera,
        camera.width_px,
        camera.height_px,
        camera.fx_px,
        camera.fy_px,
        camera.cx_px,
        camera.cy_px,
    ))
}

/// Runs `vla train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let defaults = TrainOptions::default();
    let steps = args.steps.unwrap_or(defaults.steps);
    if !(args.lr.is_finite() && args.lr > 0.0) {
        anyhow::bail!("--lr must be a positive number, got {}", args.lr);
    }
    for (flag, w) in [
        ("--aux-weight", args.aux_weight),
        ("--keypoint-weight", args.keypoint_weight),
    ] {
        if !(w.is_finite() && w >= 0.0) {
            anyhow::bail!("{flag} must be a number >= 0, got {w}");
        }
    }
    if args.workers == 0 {
        anyhow::bail!("--workers must be at least 1");
    }
    if !args.data_weight.is_empty() && args.data_weight.len() != args.data.len() {
        anyhow::bail!(
            "{} --data-weight values for {} --data folders: give one per folder, in the same order",
            args.data_weight.len(),
            args.data.len()
        );
    }
    if let Some(w) = args
        .data_weight
        .iter()
        .find(|w| !(w.is_finite() && **w >= 0.0))
    {
        anyhow::bail!("--data-weight must be a number >= 0, got {w}");
    }
    if !(0.0..1.0).contains(&args.text_dropout) {
        anyhow::bail!(
            "--text-dropout must be in [0, 1), got {}",
            args.text_dropout
        );
    }
    let init_from = args
        .init_from
        .as_deref()
        .map(super::shared::resolve_policy_dir)
        .transpose()?;
    // The network's shape: the flags, else the warm start's (so that
    // every stage of a recipe need not repeat them), else the defaults.
    let init_model = match &init_from {
        Some(dir) => Some(
            vla_policy::PolicyConfig::read(dir)
                .with_context(|| format!("reading --init-from {}", dir.display()))?
                .model,
        ),
        None => None,
    };
    let stem_from = init_model.as_ref().unwrap_or(&defaults.model);
    // The wrist branch: the flag, else the warm start's.
    let init_wrist = match &init_from {
        Some(dir) => vla_policy::PolicyConfig::read(dir)?
            .wrist
            .and(init_model.as_ref().and_then(|m| m.crop.clone())),
        None => None,
    };
    let wrist_net = match args.wrist_px {
        Some(0) => None,
        Some(side_px) => Some(vla_policy::model::CropNetConfig {
            side_px,
            patch_px: 4,
            channels: vec![32, 64, 128],
            keypoints: 8,
            keypoint_stage: 0,
        }),
        None => init_wrist,
    };
    let mut opts = TrainOptions {
        workers: args.workers,
        text_dropout: args.text_dropout,
        prev_action_dropout: args.prev_action_dropout,
        first_keypoint_noise_px: args.first_keypoint_noise_px,
        text_dropout_keep: args
            .text_dropout_keep
            .iter()
            .map(|w| w.trim().to_lowercase())
            .filter(|w| !w.is_empty())
            .collect(),
        steps,
        // Validate about ten times per run, at most every 250 steps; 0:
        // only at the end.
        val_every: args
            .val_every
            .unwrap_or((steps / 10).clamp(1, defaults.val_every)),
        val_max_frames: args.val_frames.unwrap_or(defaults.val_max_frames),
        validate: !args.no_val,
        batch: args.batch.unwrap_or(defaults.batch),
        seed: args.seed,
        use_state: !args.no_state,
        decoding: args.decoding,
        keypoint_window: args.keypoint_window.clone(),
        keypoint_window_in_training: args.keypoint_window_in_training,
        stop_at: args.stop_at,
        keypoint_targets: usize::from(args.keypoint_targets),
        keypoint_bilinear: !args.keypoint_one_hot,
        model: vla_policy::ModelConfig {
            relation_token: !args.no_relation_token,
            keypoint_stage: args.keypoint_stage.unwrap_or(stem_from.keypoint_stage),
            stem_patch_px: args.stem_patch_px.unwrap_or(stem_from.stem_patch_px),
            stem_channels: args
                .stem_channels
                .clone()
                .unwrap_or_else(|| stem_from.stem_channels.clone()),
            encoder_layers: args
                .encoder_layers
                .map_or(stem_from.encoder_layers, usize::from),
            keypoints: args.keypoints.map_or(stem_from.keypoints, usize::from),
            mlp_ratio: args.mlp_ratio.map_or(stem_from.mlp_ratio, usize::from),
            instruction_queries: args.instruction_queries,
            keypoint_hidden: args.keypoint_hidden,
            prev_action_input: args.prev_action
                || args.prev_action_parts.is_some()
                || stem_from.prev_action_input,
            prev_action_parts: args
                .prev_action_parts
                .unwrap_or(stem_from.prev_action_parts),
            first_keypoints: args.first_keypoints || stem_from.first_keypoints,
            keypoint_refine: args.keypoint_refine.unwrap_or(stem_from.keypoint_refine),
            keypoint_refine_reduce: args
                .keypoint_refine_reduce
                .map_or(stem_from.keypoint_refine_reduce, usize::from),
            crop: match &wrist_net {
                Some(net) => Some(net.clone()),
                None => (args.hand_crop_px > 0).then(|| vla_policy::model::CropNetConfig {
                    side_px: args.hand_crop_px,
                    ..Default::default()
                }),
            },
            ..defaults.model.clone()
        },
        wrist: wrist_net.is_some(),
        crop_camera: if args.hand_crop_px > 0 && wrist_net.is_none() {
            Some(crop_camera(&args.crop_suite)?)
        } else {
            None
        },
        table_plane_camera: if args.table_plane {
            Some(crop_camera(&args.crop_suite)?)
        } else {
            None
        },
        table_plane_fine_m: args.table_plane_fine_m,
        table_plane_held: args.table_plane_held,
        lr: args.lr,
        init_from,
        label_sigma_bins: args.label_sigma_bins.max(0.0),
        aux_weight: args.aux_weight,
        keypoint_weight: args.keypoint_weight,
        perception_only: args.perception_only,
        state_joints: args.state_joints.clone(),
        tcp: args
            .tcp_urdf
            .as_ref()
            .map(|urdf| vla_policy::tcp::TcpSource {
                urdf: urdf.clone(),
                base_link: args.tcp_base_link.clone(),
                tip_link: args.tcp_tip_link.clone(),
            }),
        augment: defaults.augment.map(|a| vla_policy::image::Augment {
            shift_px: args.shift_px.max(0),
            ..a
        }),
        ..defaults
    };
    let dirs = args
        .data
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let (data, counts) = vla_policy::data::load_dirs_counted(&args.data, opts.model.image_size_px)
        .with_context(|| format!("loading demonstrations from {dirs}"))?;
    if !args.data_weight.is_empty() {
        opts.sample_weights = Some(
            counts
                .iter()
                .zip(&args.data_weight)
                .flat_map(|(&n, &w)| std::iter::repeat_n(w, n))
                .collect(),
        );
    }
    eprintln!(
        "{} frames from {} episodes in {dirs}",
        data.samples.len(),
        data.episodes(),
    );
    let text = TextEncoder::from_default_location(args.text_encoder.as_deref(), &Device::Cpu)?;
    let report = vla_policy::train(&data, &text, &args.out, &opts)?;
    // Append the per-step log, so that a resumed run extends it.
    let log_path = args.out.join("train_log.jsonl");
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    for entry in &report.log {
        writeln!(log, "{}", serde_json::to_string(entry)?)
            .with_context(|| format!("writing {}", log_path.display()))?;
    }
    if report.start_step >= report.end_step {
        println!(
            "{} already holds a policy trained for {} steps; nothing to do (pass a larger --steps to continue)",
            args.out.display(),
            report.start_step
        );
        return Ok(());
    }
    let last = report.log.last().map(|e| e.train_loss).unwrap_or(f64::NAN);
    println!(
        "trained steps {}..{} in {}: last train loss {last:.4}, {:.1} samples/s",
        report.start_step,
        report.end_step,
        args.out.display(),
        report.samples_per_sec
    );
    if let Some((loss, acc)) = report.final_val {
        println!(
            "validation ({} of {} held-out frames): loss {loss:.4}, token accuracy {acc:.3}",
            report.val_scored, report.val_samples
        );
    }
    if let (Some((copied, fresh)), Some(init)) = (&report.warm_start, &args.init_from) {
        println!(
            "warm start from {init}: {} tensors copied, {} new: {}",
            copied.len(),
            fresh.len(),
            fresh.join(", ")
        );
    }
    Ok(())
}

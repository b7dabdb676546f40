//! The tabletop simulator: a deterministic world to collect demonstrations
//! and measure task success.
//!
//! * [`scene`] and [`suite`]: the data files under `sim/` (scenes, task
//!   suites with train/eval splits);
//! * [`goal`] and [`language`]: structured goals, instruction templates and
//!   the vocabulary parser;
//! * [`layout`]: seeded object placement.

pub mod error;
pub mod goal;
pub mod language;
pub mod layout;
pub mod physics;
pub mod scene;
pub mod suite;

pub use error::SimError;
pub use goal::{Direction, Family, Goal, ObjectRef};
pub use scene::SceneConfig;
pub use suite::{Split, Task, TaskSuite};

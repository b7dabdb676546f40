//! Scene files (`sim/scenes/*.toml`): the table, the robot's placement, the
//! workspace, the camera, the light, the colours and the object catalogue.
//! Parsed with serde (unknown keys are errors) and validated on load.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::SimError;

/// A whole scene description.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SceneConfig {
    /// Scene name.
    pub name: String,
    /// Simulation rates.
    pub physics: PhysicsConfig,
    /// The table.
    pub table: TableConfig,
    /// The robot and where it stands.
    pub robot: RobotConfig,
    /// Where objects may be placed.
    pub workspace: WorkspaceConfig,
    /// The third-person camera.
    pub camera: CameraConfig,
    /// A camera on the hand, looking past the fingers (optional; rendered
    /// only for policies and collections that ask for it).
    #[serde(default)]
    pub wrist_camera: Option<WristCameraConfig>,
    /// The light.
    pub light: LightConfig,
    /// Colour names and their RGB (0..1).
    pub colors: BTreeMap<String, [f32; 3]>,
    /// The object catalogue.
    pub shapes: Vec<ShapeConfig>,
    /// Folder of the repository this scene belongs to (the parent of `sim/`),
    /// used to resolve the robot's URDF. Set on load.
    #[serde(skip)]
    pub root_dir: PathBuf,
}

/// Simulation rates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhysicsConfig {
    /// Policy steps per second.
    pub policy_rate_hz: f64,
    /// Physics steps per policy step.
    pub substeps: usize,
    /// Magnitude of gravity, m/s², pointing along −z.
    pub gravity_m_s2: f64,
    /// Constraint solver iterations per physics step.
    pub solver_iterations: usize,
}

/// The table: a box whose top surface is at `height_m`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// Centre of the top surface in x and y, metres.
    pub centre_xy_m: [f64; 2],
    /// Size of the top in x and y, metres.
    pub size_xy_m: [f64; 2],
    /// Height of the top surface above the floor, metres.
    pub height_m: f64,
    /// Thickness of the table top, metres.
    pub thickness_m: f64,
    /// Colour.
    pub rgb: [f32; 3],
    /// Coulomb friction coefficient of the top.
    pub friction: f64,
}

/// The robot, its placement and its gripper.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RobotConfig {
    /// URDF file, relative to the repository root.
    pub urdf: PathBuf,
    /// Base link of the arm chain.
    pub base_link: String,
    /// Tool centre point link (the controlled tip).
    pub tip_link: String,
    /// The hand link the fingers hang from.
    pub hand_link: String,
    /// Base position in the world, metres.
    pub base_xyz_m: [f64; 3],
    /// Base rotation about world z, radians.
    pub base_yaw_rad: f64,
    /// Joint positions at the start of every episode.
    pub home_positions_rad: Vec<f64>,
    /// The gripper's prismatic finger joints.
    pub finger_joints: Vec<String>,
    /// Opening of each finger when the gripper is open, metres.
    pub finger_open_m: f64,
    /// Finger speed, m/s.
    pub finger_speed_m_s: f64,
    /// Links that collide with objects.
    pub collision_links: Vec<String>,
    /// Colour of the robot's links.
    pub rgb: [f32; 3],
}

impl RobotConfig {
    /// `world_from_base` of the robot.
    pub fn world_from_base(&self) -> nalgebra::Isometry3<f64> {
        let [x, y, z] = self.base_xyz_m;
        nalgebra::Isometry3::new(
            nalgebra::Vector3::new(x, y, z),
            nalgebra::Vector3::z() * self.base_yaw_rad,
        )
    }
}

/// Where objects are placed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceConfig {
    /// Range of object centres in world x, metres.
    pub x_range_m: [f64; 2],
    /// Range of object centres in world y, metres.
    pub y_range_m: [f64; 2],
    /// Free space kept between object footprints, metres.
    pub min_gap_m: f64,
    /// Range of object yaw, radians.
    pub yaw_range_rad: [f64; 2],
}

/// The camera.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// Camera position, world frame, metres.
    pub eye_m: [f64; 3],
    /// Point looked at, world frame, metres.
    pub target_m: [f64; 3],
    /// Up direction, world frame.
    pub up: [f64; 3],
    /// Vertical field of view, degrees.
    pub vertical_fov_deg: f64,
    /// Image width, pixels.
    pub width_px: u32,
    /// Image height, pixels.
    pub height_px: u32,
}

/// A camera fixed to the hand, posed in the tool-centre-point frame
/// (`panda_hand_tcp`: z along the fingers, y the direction they open in).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WristCameraConfig {
    /// Camera position in the TCP frame, metres.
    pub eye_in_tcp_m: [f64; 3],
    /// Point looked at, TCP frame, metres.
    pub target_in_tcp_m: [f64; 3],
    /// Up direction of the image, TCP frame.
    pub up_in_tcp: [f64; 3],
    /// Vertical field of view, degrees.
    pub vertical_fov_deg: f64,
    /// Image width, pixels.
    pub width_px: u32,
    /// Image height, pixels.
    pub height_px: u32,
}

/// A directional light.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LightConfig {
    /// Direction the light travels, world frame.
    pub direction: [f64; 3],
    /// Ambient intensity (0..1).
    pub ambient: f32,
    /// Diffuse intensity (0..1).
    pub diffuse: f32,
}

/// Geometry of a catalogue entry.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShapeKind {
    /// A box (`size_m`).
    Box,
    /// An upright cylinder (`radius_m`, `height_m`).
    Cylinder,
    /// A ball (`radius_m`).
    Sphere,
    /// An open bowl (`radius_m`, `height_m`), a receptacle.
    Bowl,
    /// A flat disc (`radius_m`, `height_m`), a receptacle.
    Plate,
}

/// One entry of the object catalogue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShapeConfig {
    /// The word used in instructions ("cube").
    pub name: String,
    /// Geometry.
    pub kind: ShapeKind,
    /// Full size of a box, metres.
    #[serde(default)]
    pub size_m: Option<[f64; 3]>,
    /// Radius of a cylinder, sphere, bowl or plate, metres.
    #[serde(default)]
    pub radius_m: Option<f64>,
    /// Height of a cylinder, bowl or plate, metres.
    #[serde(default)]
    pub height_m: Option<f64>,
    /// Mass of a dynamic object, kilograms.
    #[serde(default)]
    pub mass_kg: Option<f64>,
}

/// The resolved geometry of a shape, in metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Geometry {
    /// Box with half extents.
    Box {
        /// Half sizes in x, y, z.
        half_extents_m: [f64; 3],
    },
    /// Upright cylinder.
    Cylinder {
        /// Radius.
        radius_m: f64,
        /// Half the height.
        half_height_m: f64,
    },
    /// Ball.
    Sphere {
        /// Radius.
        radius_m: f64,
    },
    /// Open bowl standing on its base.
    Bowl {
        /// Rim radius.
        radius_m: f64,
        /// Height.
        height_m: f64,
    },
    /// Flat disc.
    Plate {
        /// Radius.
        radius_m: f64,
        /// Thickness.
        height_m: f64,
    },
}

impl Geometry {
    /// Is this a receptacle (bowl or plate), fixed to the table?
    pub fn is_receptacle(&self) -> bool {
        matches!(self, Self::Bowl { .. } | Self::Plate { .. })
    }

    /// Height of the object standing on the table, metres.
    pub fn height_m(&self) -> f64 {
        match *self {
            Self::Box { half_extents_m } => 2.0 * half_extents_m[2],
            Self::Cylinder { half_height_m, .. } => 2.0 * half_height_m,
            Self::Sphere { radius_m } => 2.0 * radius_m,
            Self::Bowl { height_m, .. } | Self::Plate { height_m, .. } => height_m,
        }
    }

    /// Radius of the circle the object covers on the table for spacing
    /// (the circumscribed circle for boxes), metres.
    pub fn footprint_radius_m(&self) -> f64 {
        match *self {
            Self::Box { half_extents_m } => half_extents_m[0].hypot(half_extents_m[1]),
            Self::Cylinder { radius_m, .. }
            | Self::Sphere { radius_m }
            | Self::Bowl { radius_m, .. }
            | Self::Plate { radius_m, .. } => radius_m,
        }
    }

    /// Half of the object's horizontal width (the inscribed radius for
    /// boxes), metres: how far its side is from its centre.
    pub fn half_width_m(&self) -> f64 {
        match *self {
            Self::Box { half_extents_m } => half_extents_m[0].min(half_extents_m[1]),
            _ => self.footprint_radius_m(),
        }
    }
}

impl ShapeConfig {
    /// The checked geometry of this entry.
    pub fn geometry(&self) -> Result<Geometry, SimError> {
        let what = format!("shape {:?}", self.name);
        let positive = |v: Option<f64>, key: &str| -> Result<f64, SimError> {
            match v {
                Some(x) if x.is_finite() && x > 0.0 && x < 1.0 => Ok(x),
                Some(x) => Err(SimError::invalid(
                    &what,
                    format!("{key} = {x} must be in (0, 1) m"),
                )),
                None => Err(SimError::invalid(&what, format!("{key} is missing"))),
            }
        };
        Ok(match self.kind {
            ShapeKind::Box => {
                let size = self
                    .size_m
                    .ok_or_else(|| SimError::invalid(&what, "size_m is missing"))?;
                let mut half = [0.0; 3];
                for (h, s) in half.iter_mut().zip(size) {
                    *h = positive(Some(s), "size_m")? / 2.0;
                }
                Geometry::Box {
                    half_extents_m: half,
                }
            }
            ShapeKind::Cylinder => Geometry::Cylinder {
                radius_m: positive(self.radius_m, "radius_m")?,
                half_height_m: positive(self.height_m, "height_m")? / 2.0,
            },
            ShapeKind::Sphere => Geometry::Sphere {
                radius_m: positive(self.radius_m, "radius_m")?,
            },
            ShapeKind::Bowl => Geometry::Bowl {
                radius_m: positive(self.radius_m, "radius_m")?,
                height_m: positive(self.height_m, "height_m")?,
            },
            ShapeKind::Plate => Geometry::Plate {
                radius_m: positive(self.radius_m, "radius_m")?,
                height_m: positive(self.height_m, "height_m")?,
            },
        })
    }

    /// Mass of a dynamic object, kilograms (0.05 kg when not given).
    pub fn mass_kg(&self) -> f64 {
        self.mass_kg.unwrap_or(0.05)
    }
}

impl SceneConfig {
    /// Reads and validates a scene file. The repository root is taken to be
    /// two folders above the file (`<root>/sim/scenes/<name>.toml`).
    pub fn load(path: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path).map_err(|e| SimError::io(path, e))?;
        let mut scene: SceneConfig = toml::from_str(&text).map_err(|e| SimError::Format {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        scene.root_dir = path
            .parent()
            .and_then(Path::parent)
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        scene.validate()?;
        Ok(scene)
    }

    /// Checks ranges and names.
    pub fn validate(&self) -> Result<(), SimError> {
        let p = &self.physics;
        if !(p.policy_rate_hz > 0.0 && p.policy_rate_hz <= 1000.0) {
            return Err(SimError::invalid(
                "physics",
                "policy_rate_hz must be in (0, 1000]",
            ));
        }
        if p.substeps == 0 || p.substeps > 1000 || p.solver_iterations == 0 {
            return Err(SimError::invalid(
                "physics",
                "substeps must be in 1..=1000 and solver_iterations ≥ 1",
            ));
        }
        if !(p.gravity_m_s2.is_finite() && p.gravity_m_s2 >= 0.0) {
            return Err(SimError::invalid("physics", "gravity_m_s2 must be ≥ 0"));
        }
        let t = &self.table;
        if !(t.height_m > 0.0 && t.thickness_m > 0.0 && t.size_xy_m.iter().all(|s| *s > 0.0)) {
            return Err(SimError::invalid("table", "sizes must be positive"));
        }
        let w = &self.workspace;
        if !(w.x_range_m[0] < w.x_range_m[1] && w.y_range_m[0] < w.y_range_m[1]) {
            return Err(SimError::invalid("workspace", "ranges must be increasing"));
        }
        if let Some(w) = &self.wrist_camera {
            let finite = w
                .eye_in_tcp_m
                .iter()
                .chain(&w.target_in_tcp_m)
                .chain(&w.up_in_tcp)
                .all(|v| v.is_finite());
            let view = nalgebra::Vector3::from(w.target_in_tcp_m)
                - nalgebra::Vector3::from(w.eye_in_tcp_m);
            let up = nalgebra::Vector3::from(w.up_in_tcp);
            if !finite || view.norm() < 1e-6 || view.cross(&up).norm() < 1e-6 * view.norm() {
                return Err(SimError::invalid(
                    "wrist_camera",
                    "needs finite values, eye ≠ target and an up direction not along the view",
                ));
            }
            if w.width_px == 0 || w.height_px == 0 || w.width_px > 1024 || w.height_px > 1024 {
                return Err(SimError::invalid(
                    "wrist_camera",
                    "image size must be 1..=1024 px",
                ));
            }
            if !(w.vertical_fov_deg > 1.0 && w.vertical_fov_deg < 170.0) {
                return Err(SimError::invalid(
                    "wrist_camera",
                    "vertical_fov_deg must be in (1, 170)",
                ));
            }
        }
        let c = &self.camera;
        if c.width_px == 0 || c.height_px == 0 || c.width_px > 4096 || c.height_px > 4096 {
            return Err(SimError::invalid(
                "camera",
                "image size must be 1..=4096 px",
            ));
        }
        if !(c.vertical_fov_deg > 1.0 && c.vertical_fov_deg < 170.0) {
            return Err(SimError::invalid(
                "camera",
                "vertical_fov_deg must be in (1, 170)",
            ));
        }
        if self.robot.finger_joints.is_empty() || self.robot.finger_open_m <= 0.0 {
            return Err(SimError::invalid(
                "robot",
                "needs finger joints and a positive finger_open_m",
            ));
        }
        if self.colors.is_empty() {
            return Err(SimError::invalid("colors", "no colours defined"));
        }
        let mut seen = std::collections::HashSet::new();
        for shape in &self.shapes {
            if !seen.insert(shape.name.as_str()) {
                return Err(SimError::invalid(
                    "shapes",
                    format!("{:?} is defined twice", shape.name),
                ));
            }
            if self.colors.contains_key(&shape.name) {
                return Err(SimError::invalid(
                    "shapes",
                    format!("{:?} is both a colour and a shape", shape.name),
                ));
            }
            shape.geometry()?;
        }
        Ok(())
    }

    /// The catalogue entry called `name`.
    pub fn shape(&self, name: &str) -> Option<&ShapeConfig> {
        self.shapes.iter().find(|s| s.name == name)
    }

    /// Duration of one policy step, seconds.
    pub fn policy_dt_secs(&self) -> f64 {
        1.0 / self.physics.policy_rate_hz
    }

    /// The robot's URDF path, resolved against the repository root.
    pub fn urdf_path(&self) -> PathBuf {
        if self.robot.urdf.is_absolute() {
            self.robot.urdf.clone()
        } else {
            self.root_dir.join(&self.robot.urdf)
        }
    }
}

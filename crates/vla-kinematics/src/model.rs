//! The whole robot description: the URDF's tree of links and joints, each
//! link's primitive geometry, and the pose of every link for given joint
//! positions. The simulator and the viewer draw the robot from this; serial
//! [`Chain`](crate::Chain)s are cut out of it.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use nalgebra::{Isometry3, Translation3, Unit, UnitQuaternion, Vector3};

use crate::limits::{JointLimits, DEFAULT_ACCELERATION_PER_VELOCITY};
use crate::KinError;

/// Colour of a visual whose URDF gives none (light grey, opaque).
pub const DEFAULT_RGBA: [f32; 4] = [0.7, 0.7, 0.7, 1.0];

/// A primitive shape, centred on its frame's origin (URDF conventions:
/// a cylinder's axis is the frame's z axis).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Geometry {
    /// A box with these side lengths along x, y, z.
    Box {
        /// Side lengths, metres.
        size_m: [f64; 3],
    },
    /// A cylinder along z.
    Cylinder {
        /// Radius, metres.
        radius_m: f64,
        /// Length along z, metres.
        length_m: f64,
    },
    /// A sphere.
    Sphere {
        /// Radius, metres.
        radius_m: f64,
    },
}

/// One visual element of a link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Visual {
    /// Pose of the shape in the link's frame.
    pub link_from_visual: Isometry3<f64>,
    /// The shape.
    pub geometry: Geometry,
    /// Colour, red green blue alpha in 0..=1.
    pub rgba: [f32; 4],
}

/// One collision element of a link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Collision {
    /// Pose of the shape in the link's frame.
    pub link_from_collision: Isometry3<f64>,
    /// The shape.
    pub geometry: Geometry,
}

/// How a joint moves its child link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JointKind {
    /// Rotation about the axis within position limits.
    Revolute,
    /// Rotation about the axis without position limits.
    Continuous,
    /// Translation along the axis.
    Prismatic,
    /// No motion.
    Fixed,
    /// Floating, planar or spherical: drawn at its origin, refused in a chain.
    Unsupported,
}

impl JointKind {
    /// Whether the joint has a position variable (revolute, continuous, prismatic).
    pub fn is_movable(self) -> bool {
        matches!(self, Self::Revolute | Self::Continuous | Self::Prismatic)
    }
}

/// A URDF `<mimic>`: this joint's position is `multiplier * leader + offset`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Mimic {
    pub leader: usize,
    pub multiplier: f64,
    pub offset: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct LinkData {
    pub name: String,
    pub parent_joint: Option<usize>,
    pub child_joints: Vec<usize>,
    pub visuals: Vec<Visual>,
    pub collisions: Vec<Collision>,
}

#[derive(Debug, Clone)]
pub(crate) struct JointData {
    pub name: String,
    pub type_name: String,
    pub kind: JointKind,
    pub parent_link: usize,
    pub child_link: usize,
    pub parent_from_origin: Isometry3<f64>,
    pub axis: Unit<Vector3<f64>>,
    pub limits: JointLimits,
    pub mimic: Option<Mimic>,
}

/// A robot description: every link and joint of a URDF.
#[derive(Debug, Clone)]
pub struct RobotModel {
    name: String,
    pub(crate) links: Vec<LinkData>,
    pub(crate) joints: Vec<JointData>,
    link_index: HashMap<String, usize>,
    joint_index: HashMap<String, usize>,
    pub(crate) root: usize,
    /// Links in breadth-first order from the root.
    order: Vec<usize>,
    link_names: Vec<String>,
    skipped_geometry: Vec<String>,
}

/// Pose of a URDF `<origin>`: translation `xyz`, rotation
/// `Rz(yaw) * Ry(pitch) * Rx(roll)` (fixed axes, as the URDF spec says).
pub(crate) fn pose_from_urdf(pose: &urdf_rs::Pose) -> Isometry3<f64> {
    let [x, y, z] = pose.xyz.0;
    let [roll, pitch, yaw] = pose.rpy.0;
    Isometry3::from_parts(
        Translation3::new(x, y, z),
        UnitQuaternion::from_euler_angles(roll, pitch, yaw),
    )
}

fn all_finite(values: &[f64]) -> bool {
    values.iter().all(|v| v.is_finite())
}

fn convert_geometry(
    geometry: &urdf_rs::Geometry,
) -> Result<Vec<(Isometry3<f64>, Geometry)>, String> {
    let positive = |v: f64| v.is_finite() && v > 0.0;
    match geometry {
        urdf_rs::Geometry::Box { size } if size.0.iter().all(|&s| positive(s)) => Ok(vec![(
            Isometry3::identity(),
            Geometry::Box { size_m: size.0 },
        )]),
        urdf_rs::Geometry::Cylinder { radius, length }
            if positive(*radius) && positive(*length) =>
        {
            Ok(vec![(
                Isometry3::identity(),
                Geometry::Cylinder {
                    radius_m: *radius,
                    length_m: *length,
                },
            )])
        }
        urdf_rs::Geometry::Sphere { radius } if positive(*radius) => Ok(vec![(
            Isometry3::identity(),
            Geometry::Sphere { radius_m: *radius },
        )]),
        // A capsule is exactly a cylinder with a sphere on each end.
        urdf_rs::Geometry::Capsule { radius, length } if positive(*radius) && positive(*length) => {
            let cap = |z: f64| Isometry3::translation(0.0, 0.0, z);
            Ok(vec![
                (
                    Isometry3::identity(),
                    Geometry::Cylinder {
                        radius_m: *radius,
                        length_m: *length,
                    },
                ),
                (cap(0.5 * length), Geometry::Sphere { radius_m: *radius }),
                (cap(-0.5 * length), Geometry::Sphere { radius_m: *radius }),
            ])
        }
        urdf_rs::Geometry::Mesh { filename, .. } => Err(format!("mesh {filename:?}")),
        other => Err(format!("degenerate {other:?}")),
    }
}

impl RobotModel {
    /// Reads a URDF file.
    pub fn from_urdf_file(path: &Path) -> Result<Self, KinError> {
        let robot = urdf_rs::read_file(path).map_err(|e| KinError::Urdf {
            source_name: format!(" {}", path.display()),
            message: e.to_string(),
        })?;
        Self::from_urdf_robot(&robot)
    }

    /// Parses URDF XML text.
    pub fn from_urdf_str(xml: &str) -> Result<Self, KinError> {
        let robot = urdf_rs::read_from_string(xml).map_err(|e| KinError::Urdf {
            source_name: String::new(),
            message: e.to_string(),
        })?;
        Self::from_urdf_robot(&robot)
    }

    /// Builds the model from a parsed `urdf_rs::Robot`, checking that it is one tree.
    pub fn from_urdf_robot(robot: &urdf_rs::Robot) -> Result<Self, KinError> {
        if robot.links.is_empty() {
            return Err(KinError::NotATree("the URDF has no links".into()));
        }
        let materials: HashMap<&str, [f32; 4]> = robot
            .materials
            .iter()
            .filter_map(|m| {
                m.color
                    .as_ref()
                    .map(|c| (m.name.as_str(), rgba_from(&c.rgba.0)))
            })
            .collect();
        let mut skipped_geometry = Vec::new();
        let mut links = Vec::with_capacity(robot.links.len());
        let mut link_index = HashMap::new();
        for link in &robot.links {
            if link_index.insert(link.name.clone(), links.len()).is_some() {
                return Err(KinError::NotATree(format!(
                    "link {:?} is defined twice",
                    link.name
                )));
            }
            let mut visuals = Vec::new();
            for visual in &link.visual {
                let rgba = visual
                    .material
                    .as_ref()
                    .and_then(|m| {
                        m.color
                            .as_ref()
                            .map(|c| rgba_from(&c.rgba.0))
                            .or_else(|| materials.get(m.name.as_str()).copied())
                    })
                    .unwrap_or(DEFAULT_RGBA);
                let link_from_shape = pose_from_urdf(&visual.origin);
                match convert_geometry(&visual.geometry) {
                    Ok(parts) => {
                        visuals.extend(parts.into_iter().map(|(shape_from_part, geometry)| {
                            Visual {
                                link_from_visual: link_from_shape * shape_from_part,
                                geometry,
                                rgba,
                            }
                        }))
                    }
                    Err(what) => skipped_geometry.push(format!("{}: visual {what}", link.name)),
                }
            }
            let mut collisions = Vec::new();
            for collision in &link.collision {
                let link_from_shape = pose_from_urdf(&collision.origin);
                match convert_geometry(&collision.geometry) {
                    Ok(parts) => {
                        collisions.extend(parts.into_iter().map(|(shape_from_part, geometry)| {
                            Collision {
                                link_from_collision: link_from_shape * shape_from_part,
                                geometry,
                            }
                        }))
                    }
                    Err(what) => skipped_geometry.push(format!("{}: collision {what}", link.name)),
                }
            }
            links.push(LinkData {
                name: link.name.clone(),
                parent_joint: None,
                child_joints: Vec::new(),
                visuals,
                collisions,
            });
        }
        let available_links = || {
            robot
                .links
                .iter()
                .map(|l| l.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };

        let mut joints = Vec::with_capacity(robot.joints.len());
        let mut joint_index = HashMap::new();
        for joint in &robot.joints {
            if joint_index
                .insert(joint.name.clone(), joints.len())
                .is_some()
            {
                return Err(KinError::NotATree(format!(
                    "joint {:?} is defined twice",
                    joint.name
                )));
            }
            let find = |name: &str| {
                link_index
                    .get(name)
                    .copied()
                    .ok_or_else(|| KinError::MissingLink {
                        link: name.to_string(),
                        available: available_links(),
                    })
            };
            let parent_link = find(&joint.parent.link)?;
            let child_link = find(&joint.child.link)?;
            joints.push(convert_joint(joint, parent_link, child_link)?);
        }

        // Tree structure: every link has at most one parent joint, one root.
        for (j, joint) in joints.iter().enumerate() {
            let child = &mut links[joint.child_link];
            if let Some(other) = child.parent_joint {
                return Err(KinError::NotATree(format!(
                    "link {:?} is the child of two joints ({:?} and {:?})",
                    child.name, joints[other].name, joint.name
                )));
            }
            child.parent_joint = Some(j);
            links[joint.parent_link].child_joints.push(j);
        }
        let roots: Vec<usize> = (0..links.len())
            .filter(|&l| links[l].parent_joint.is_none())
            .collect();
        let root = match roots.as_slice() {
            [root] => *root,
            [] => {
                return Err(KinError::NotATree(
                    "every link has a parent (a cycle)".into(),
                ))
            }
            many => {
                let names: Vec<&str> = many.iter().map(|&l| links[l].name.as_str()).collect();
                return Err(KinError::NotATree(format!(
                    "several root links: {}",
                    names.join(", ")
                )));
            }
        };
        let mut order = Vec::with_capacity(links.len());
        let mut queue = VecDeque::from([root]);
        while let Some(l) = queue.pop_front() {
            order.push(l);
            queue.extend(links[l].child_joints.iter().map(|&j| joints[j].child_link));
        }
        if order.len() != links.len() {
            return Err(KinError::NotATree(
                "some links are not connected to the root (a cycle)".into(),
            ));
        }

        // Mimic joints: leaders must exist, be movable, and not loop.
        for (j, joint) in robot.joints.iter().enumerate() {
            if let Some(mimic) = &joint.mimic {
                let leader = joint_index.get(&mimic.joint).copied().ok_or_else(|| {
                    KinError::InvalidJoint {
                        joint: joint.name.clone(),
                        reason: format!("mimics joint {:?}, which does not exist", mimic.joint),
                    }
                })?;
                let multiplier = mimic.multiplier.unwrap_or(1.0);
                let offset = mimic.offset.unwrap_or(0.0);
                if !multiplier.is_finite() || !offset.is_finite() {
                    return Err(KinError::InvalidJoint {
                        joint: joint.name.clone(),
                        reason: "mimic multiplier/offset is not finite".into(),
                    });
                }
                if !joints[j].kind.is_movable() || !joints[leader].kind.is_movable() {
                    return Err(KinError::InvalidJoint {
                        joint: joint.name.clone(),
                        reason: format!(
                            "mimic between {:?} and {:?}: both joints must be movable",
                            joint.name, mimic.joint
                        ),
                    });
                }
                joints[j].mimic = Some(Mimic {
                    leader,
                    multiplier,
                    offset,
                });
            }
        }
        for start in 0..joints.len() {
            let mut j = start;
            for _ in 0..=joints.len() {
                match joints[j].mimic {
                    Some(m) => j = m.leader,
                    None => break,
                }
            }
            if joints[j].mimic.is_some() {
                return Err(KinError::InvalidJoint {
                    joint: joints[start].name.clone(),
                    reason: "mimic joints form a loop".into(),
                });
            }
        }

        let link_names = order.iter().map(|&l| links[l].name.clone()).collect();
        Ok(Self {
            name: robot.name.clone(),
            links,
            joints,
            link_index,
            joint_index,
            root,
            order,
            link_names,
            skipped_geometry,
        })
    }

    /// The robot's name from the URDF.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The root link.
    pub fn root_link(&self) -> &str {
        &self.links[self.root].name
    }

    /// Every link, root first, parents before children (breadth first).
    pub fn link_names(&self) -> &[String] {
        &self.link_names
    }

    /// Names of the joints with a position variable (revolute, continuous,
    /// prismatic), mimic joints included, in URDF order.
    pub fn movable_joint_names(&self) -> Vec<String> {
        self.joints
            .iter()
            .filter(|j| j.kind.is_movable())
            .map(|j| j.name.clone())
            .collect()
    }

    /// Limits of a joint by name.
    pub fn joint_limits(&self, joint: &str) -> Result<JointLimits, KinError> {
        Ok(self.joints[self.joint(joint)?].limits)
    }

    /// The primitive visuals of a link (empty for an unknown link).
    pub fn link_visuals(&self, link: &str) -> &[Visual] {
        self.link_index
            .get(link)
            .map_or(&[], |&l| self.links[l].visuals.as_slice())
    }

    /// The primitive collision shapes of a link (empty for an unknown link).
    pub fn link_collisions(&self, link: &str) -> &[Collision] {
        self.link_index
            .get(link)
            .map_or(&[], |&l| self.links[l].collisions.as_slice())
    }

    /// Visual or collision elements that were not loaded (meshes, degenerate
    /// shapes), as `"link: what"`. Kinematics is unaffected.
    pub fn skipped_geometry(&self) -> &[String] {
        &self.skipped_geometry
    }

    pub(crate) fn link(&self, name: &str) -> Result<usize, KinError> {
        self.link_index
            .get(name)
            .copied()
            .ok_or_else(|| KinError::MissingLink {
                link: name.to_string(),
                available: self.link_names.join(", "),
            })
    }

    pub(crate) fn joint(&self, name: &str) -> Result<usize, KinError> {
        self.joint_index
            .get(name)
            .copied()
            .ok_or_else(|| KinError::UnknownJoint {
                joint: name.to_string(),
                scope: "the URDF".into(),
                available: self.movable_joint_names().join(", "),
            })
    }

    /// The joint at the end of a mimic chain and the affine map from its
    /// position to joint `j`'s: `q_j = multiplier * q_source + offset`.
    pub(crate) fn mimic_source(&self, j: usize) -> (usize, f64, f64) {
        let (mut source, mut multiplier, mut offset) = (j, 1.0, 0.0);
        // Loops were rejected at load, so this ends within joints.len() steps.
        for _ in 0..self.joints.len() {
            match self.joints[source].mimic {
                Some(m) => {
                    // q = mult * (m.mult * q_leader + m.offset) + offset
                    offset += multiplier * m.offset;
                    multiplier *= m.multiplier;
                    source = m.leader;
                }
                None => break,
            }
        }
        (source, multiplier, offset)
    }

    /// Pose of every link in the root link's frame (`root_from_link`), root
    /// first, for the given joint positions keyed by joint name.
    ///
    /// Joints not in the map sit at 0 clamped into their limits; mimic joints
    /// follow their leader (a value given for a mimic joint is an error, as
    /// it could contradict its leader). Unknown names and non-finite values
    /// are errors.
    pub fn link_poses(
        &self,
        positions: &HashMap<String, f64>,
    ) -> Result<Vec<(String, Isometry3<f64>)>, KinError> {
        let mut values = vec![None; self.joints.len()];
        for (name, &value) in positions {
            let j = self.joint(name)?;
            self.check_settable(j, value)?;
            values[j] = Some(value);
        }
        Ok(self.poses_from_values(&values))
    }

    /// Like [`link_poses`](Self::link_poses), with positions given as two
    /// parallel slices (e.g. a chain's `joint_names()` and its joint vector).
    pub fn link_poses_from(
        &self,
        joint_names: &[String],
        positions: &[f64],
    ) -> Result<Vec<(String, Isometry3<f64>)>, KinError> {
        if joint_names.len() != positions.len() {
            return Err(KinError::DofMismatch {
                what: "link_poses_from positions".into(),
                expected: joint_names.len(),
                actual: positions.len(),
            });
        }
        let mut values = vec![None; self.joints.len()];
        for (name, &value) in joint_names.iter().zip(positions) {
            let j = self.joint(name)?;
            self.check_settable(j, value)?;
            values[j] = Some(value);
        }
        Ok(self.poses_from_values(&values))
    }

    fn check_settable(&self, j: usize, value: f64) -> Result<(), KinError> {
        let joint = &self.joints[j];
        if !value.is_finite() {
            return Err(KinError::NonFinite {
                what: format!("position of joint {:?}", joint.name),
                value,
            });
        }
        if joint.mimic.is_some() {
            return Err(KinError::InvalidJoint {
                joint: joint.name.clone(),
                reason: "is a mimic joint; set its leader instead".into(),
            });
        }
        Ok(())
    }

    fn poses_from_values(&self, values: &[Option<f64>]) -> Vec<(String, Isometry3<f64>)> {
        let position = |j: usize| {
            let (source, multiplier, offset) = self.mimic_source(j);
            let q = values[source].unwrap_or_else(|| self.joints[source].limits.clamp(0.0));
            multiplier * q + offset
        };
        let mut root_from = vec![Isometry3::identity(); self.links.len()];
        let mut out = Vec::with_capacity(self.links.len());
        for &l in &self.order {
            if let Some(j) = self.links[l].parent_joint {
                let joint = &self.joints[j];
                let motion = joint_motion(joint.kind, &joint.axis, position(j));
                root_from[l] = root_from[joint.parent_link] * joint.parent_from_origin * motion;
            }
            out.push((self.links[l].name.clone(), root_from[l]));
        }
        out
    }
}

/// Transform from a joint's origin frame to its child link for position `q`.
pub(crate) fn joint_motion(kind: JointKind, axis: &Unit<Vector3<f64>>, q: f64) -> Isometry3<f64> {
    match kind {
        JointKind::Revolute | JointKind::Continuous => Isometry3::from_parts(
            Translation3::identity(),
            UnitQuaternion::from_axis_angle(axis, q),
        ),
        JointKind::Prismatic => Isometry3::from_parts(
            Translation3::from(axis.into_inner() * q),
            UnitQuaternion::identity(),
        ),
        JointKind::Fixed | JointKind::Unsupported => Isometry3::identity(),
    }
}

fn rgba_from(rgba: &[f64; 4]) -> [f32; 4] {
    // Narrowing to f32 is intended: colours need no more precision.
    rgba.map(|c| c.clamp(0.0, 1.0) as f32)
}

fn convert_joint(
    joint: &urdf_rs::Joint,
    parent_link: usize,
    child_link: usize,
) -> Result<JointData, KinError> {
    let invalid = |reason: String| KinError::InvalidJoint {
        joint: joint.name.clone(),
        reason,
    };
    let (kind, type_name) = match joint.joint_type {
        urdf_rs::JointType::Revolute => (JointKind::Revolute, "revolute"),
        urdf_rs::JointType::Continuous => (JointKind::Continuous, "continuous"),
        urdf_rs::JointType::Prismatic => (JointKind::Prismatic, "prismatic"),
        urdf_rs::JointType::Fixed => (JointKind::Fixed, "fixed"),
        urdf_rs::JointType::Floating => (JointKind::Unsupported, "floating"),
        urdf_rs::JointType::Planar => (JointKind::Unsupported, "planar"),
        urdf_rs::JointType::Spherical => (JointKind::Unsupported, "spherical"),
    };
    if !all_finite(&joint.origin.xyz.0) || !all_finite(&joint.origin.rpy.0) {
        return Err(invalid("origin is not finite".into()));
    }
    let axis_vec = Vector3::from(joint.axis.xyz.0);
    let axis = if kind.is_movable() {
        if !all_finite(&joint.axis.xyz.0) || axis_vec.norm() < 1e-12 {
            return Err(invalid(format!(
                "axis {:?} is zero or not finite",
                joint.axis.xyz.0
            )));
        }
        Unit::new_normalize(axis_vec)
    } else {
        Vector3::z_axis()
    };
    let limit = &joint.limit;
    let (lower_rad, upper_rad) = match kind {
        JointKind::Revolute | JointKind::Prismatic => {
            if !limit.lower.is_finite() || !limit.upper.is_finite() || limit.lower > limit.upper {
                return Err(invalid(format!(
                    "position limits [{}, {}] are not a finite range",
                    limit.lower, limit.upper
                )));
            }
            (limit.lower, limit.upper)
        }
        JointKind::Continuous => (f64::NEG_INFINITY, f64::INFINITY),
        JointKind::Fixed | JointKind::Unsupported => (0.0, 0.0),
    };
    if limit.velocity.is_nan()
        || limit.velocity < 0.0
        || limit.effort.is_nan()
        || limit.effort < 0.0
    {
        return Err(invalid(format!(
            "velocity {} and effort {} limits must be non-negative",
            limit.velocity, limit.effort
        )));
    }
    let velocity_rad_s = if limit.velocity > 0.0 {
        limit.velocity
    } else {
        f64::INFINITY
    };
    Ok(JointData {
        name: joint.name.clone(),
        type_name: type_name.to_string(),
        kind,
        parent_link,
        child_link,
        parent_from_origin: pose_from_urdf(&joint.origin),
        axis,
        limits: JointLimits {
            lower_rad,
            upper_rad,
            velocity_rad_s,
            effort: limit.effort,
            acceleration_rad_s2: DEFAULT_ACCELERATION_PER_VELOCITY * velocity_rad_s,
        },
        mimic: None,
    })
}

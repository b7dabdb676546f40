//! A serial chain cut out of a robot model: the movable joints from a base
//! link to a tip link, with everything fixed between them folded into
//! constant transforms. Forward kinematics and the geometric Jacobian.
//!
//! Default tip rule (when no tip is named): among the leaves below the base,
//! take those reached through the most revolute/continuous joints; if there
//! are several, keep those whose path after its last revolute joint has only
//! fixed joints (a tool frame, not a finger); if exactly one leaf remains it is
//! the tip, otherwise the choice is ambiguous and an error lists the
//! candidates. A base with a single leaf below it always uses that leaf. For
//! the Panda this picks `panda_hand_tcp` over the two fingers.
//!
//! Mimic joints follow the URDF spec: a mimic joint's position is
//! `multiplier * leader + offset`. The chain's variables are the joints that
//! do not mimic another; a mimic joint in the chain moves with its leader's
//! variable (the leader's Jacobian column gets `multiplier` times the mimic
//! joint's contribution). If the leader is not on the path, the chain still
//! has one variable for it, named after the leader.

use std::path::Path;

use nalgebra::{Isometry3, Matrix6xX, Unit, UnitQuaternion, Vector3};
use vla_core::JointState;

use crate::limits::JointLimits;
use crate::model::{JointKind, RobotModel};
use crate::KinError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Motion {
    Revolute,
    Prismatic,
}

/// One movable joint on the chain's path.
#[derive(Debug, Clone)]
struct ChainJoint {
    /// Previous movable joint's frame (after its motion) to this joint's origin.
    prev_from_joint: Isometry3<f64>,
    axis: Unit<Vector3<f64>>,
    motion: Motion,
    /// Index of the variable that drives this joint.
    var: usize,
    multiplier: f64,
    offset: f64,
}

/// A serial kinematic chain from a base link to a tip link.
#[derive(Debug, Clone)]
pub struct Chain {
    base_link: String,
    tip_link: String,
    joints: Vec<ChainJoint>,
    last_from_tip: Isometry3<f64>,
    joint_names: Vec<String>,
    limits: Vec<JointLimits>,
}

impl Chain {
    /// Loads the chain `base → tip` from a URDF file (`None`: the root link,
    /// and the tip chosen by the rule in the module documentation).
    pub fn from_urdf_file(
        path: &Path,
        base: Option<&str>,
        tip: Option<&str>,
    ) -> Result<Self, KinError> {
        Self::from_model(&RobotModel::from_urdf_file(path)?, base, tip)
    }

    /// Like [`from_urdf_file`](Self::from_urdf_file), from URDF XML text.
    pub fn from_urdf_str(
        xml: &str,
        base: Option<&str>,
        tip: Option<&str>,
    ) -> Result<Self, KinError> {
        Self::from_model(&RobotModel::from_urdf_str(xml)?, base, tip)
    }

    /// Cuts the chain `base → tip` out of a loaded model.
    pub fn from_model(
        model: &RobotModel,
        base: Option<&str>,
        tip: Option<&str>,
    ) -> Result<Self, KinError> {
        let base_idx = match base {
            Some(name) => model.link(name)?,
            None => model.root,
        };
        let tip_idx = match tip {
            Some(name) => model.link(name)?,
            None => default_tip(model, base_idx)?,
        };
        let path =
            path_joints(model, base_idx, tip_idx).ok_or_else(|| KinError::TipNotBelowBase {
                base: model.links[base_idx].name.clone(),
                tip: model.links[tip_idx].name.clone(),
            })?;

        let mut joints = Vec::new();
        let mut joint_names: Vec<String> = Vec::new();
        let mut limits = Vec::new();
        let mut pending = Isometry3::identity();
        let mut sources: Vec<usize> = Vec::new();
        for &j in &path {
            let joint = &model.joints[j];
            pending *= joint.parent_from_origin;
            let motion = match joint.kind {
                JointKind::Fixed => continue,
                JointKind::Unsupported => {
                    return Err(KinError::UnsupportedJoint {
                        joint: joint.name.clone(),
                        kind: joint.type_name.clone(),
                    })
                }
                JointKind::Revolute | JointKind::Continuous => Motion::Revolute,
                JointKind::Prismatic => Motion::Prismatic,
            };
            let (source, multiplier, offset) = model.mimic_source(j);
            let var = match sources.iter().position(|&s| s == source) {
                Some(v) => v,
                None => {
                    sources.push(source);
                    joint_names.push(model.joints[source].name.clone());
                    limits.push(model.joints[source].limits);
                    sources.len() - 1
                }
            };
            joints.push(ChainJoint {
                prev_from_joint: pending,
                axis: joint.axis,
                motion,
                var,
                multiplier,
                offset,
            });
            pending = Isometry3::identity();
        }
        if joints.is_empty() {
            return Err(KinError::InvalidConfig(format!(
                "no movable joint between {:?} and {:?}",
                model.links[base_idx].name, model.links[tip_idx].name
            )));
        }
        Ok(Self {
            base_link: model.links[base_idx].name.clone(),
            tip_link: model.links[tip_idx].name.clone(),
            joints,
            last_from_tip: pending,
            joint_names,
            limits,
        })
    }

    /// Number of joint variables.
    pub fn dof(&self) -> usize {
        self.joint_names.len()
    }

    /// Names of the joint variables, base to tip.
    pub fn joint_names(&self) -> &[String] {
        &self.joint_names
    }

    /// Limits of the joint variables, in [`joint_names`](Self::joint_names) order.
    pub fn limits(&self) -> &[JointLimits] {
        &self.limits
    }

    /// The base link.
    pub fn base_link(&self) -> &str {
        &self.base_link
    }

    /// The tip link.
    pub fn tip_link(&self) -> &str {
        &self.tip_link
    }

    /// Replaces the acceleration limits (URDF has none; the controller
    /// configuration supplies them). Each must be positive.
    pub fn set_acceleration_limits(&mut self, acceleration_rad_s2: &[f64]) -> Result<(), KinError> {
        self.check_len(acceleration_rad_s2, "acceleration limits")?;
        if let Some(&bad) = acceleration_rad_s2
            .iter()
            .find(|a| a.is_nan() || **a <= 0.0)
        {
            return Err(KinError::InvalidConfig(format!(
                "acceleration limit {bad} must be positive"
            )));
        }
        for (limit, &a) in self.limits.iter_mut().zip(acceleration_rad_s2) {
            limit.acceleration_rad_s2 = a;
        }
        Ok(())
    }

    /// Middle of each joint's range (0 for continuous joints).
    pub fn mid_positions(&self) -> Vec<f64> {
        self.limits.iter().map(JointLimits::mid).collect()
    }

    /// Whether every value lies within its joint's limits.
    pub fn within_limits(&self, q: &[f64]) -> bool {
        q.len() == self.dof() && self.limits.iter().zip(q).all(|(l, &v)| l.contains(v))
    }

    /// Clamps each value into its joint's limits, in place.
    pub fn clamp_to_limits(&self, q: &mut [f64]) {
        for (v, l) in q.iter_mut().zip(&self.limits) {
            *v = l.clamp(*v);
        }
    }

    fn check_len(&self, values: &[f64], what: &str) -> Result<(), KinError> {
        if values.len() == self.dof() {
            Ok(())
        } else {
            Err(KinError::DofMismatch {
                what: what.to_string(),
                expected: self.dof(),
                actual: values.len(),
            })
        }
    }

    /// Errors unless `q` has one finite value per joint.
    pub fn check_positions(&self, q: &[f64]) -> Result<(), KinError> {
        self.check_len(q, "joint positions")?;
        for (name, &v) in self.joint_names.iter().zip(q) {
            if !v.is_finite() {
                return Err(KinError::NonFinite {
                    what: format!("position of joint {name:?}"),
                    value: v,
                });
            }
        }
        Ok(())
    }

    /// This chain's joint positions picked by name out of a measured joint
    /// state (which may list more joints, in any order, e.g. ROS `/joint_states`).
    pub fn positions_from_state(&self, state: &JointState) -> Result<Vec<f64>, KinError> {
        self.joint_names
            .iter()
            .map(|name| {
                state
                    .position_of(name)
                    .ok_or_else(|| KinError::UnknownJoint {
                        joint: name.clone(),
                        scope: "the joint state".into(),
                        available: state.names().join(", "),
                    })
            })
            .collect()
    }

    /// Forward kinematics: the tip's pose in the base frame (`base_from_tip`).
    /// Does not allocate. Positions outside the limits are computed as given.
    pub fn fk(&self, q: &[f64]) -> Result<Isometry3<f64>, KinError> {
        self.check_positions(q)?;
        let mut base_from = Isometry3::identity();
        for joint in &self.joints {
            base_from *= joint.prev_from_joint;
            let qj = joint.multiplier * q[joint.var] + joint.offset;
            match joint.motion {
                Motion::Revolute => {
                    base_from.rotation *= UnitQuaternion::from_axis_angle(&joint.axis, qj)
                }
                Motion::Prismatic => {
                    base_from.translation.vector +=
                        base_from.rotation * (joint.axis.into_inner() * qj)
                }
            }
        }
        Ok(base_from * self.last_from_tip)
    }

    /// The geometric Jacobian in the base frame (6 × dof: rows are linear
    /// velocity x y z of the tip point, then angular velocity x y z).
    pub fn jacobian(&self, q: &[f64]) -> Result<Matrix6xX<f64>, KinError> {
        let mut jac = Matrix6xX::zeros(self.dof());
        self.fk_with_jacobian(q, &mut jac)?;
        Ok(jac)
    }

    /// Forward kinematics and the Jacobian in one pass, writing the Jacobian
    /// into `jac` (resized once if it does not have `dof` columns, otherwise
    /// no allocation). Returns `base_from_tip`.
    pub fn fk_with_jacobian(
        &self,
        q: &[f64],
        jac: &mut Matrix6xX<f64>,
    ) -> Result<Isometry3<f64>, KinError> {
        self.check_positions(q)?;
        if jac.ncols() == self.dof() {
            jac.fill(0.0);
        } else {
            *jac = Matrix6xX::zeros(self.dof());
        }
        // Revolute joint i contributes z_i × (p_tip - p_i) = z_i × p_tip - z_i × p_i
        // to its column. Summing over the joints sharing a variable (mimic), the
        // angular rows hold Σ m z and the linear rows Σ -m z × p (+ m z for
        // prismatic joints) until p_tip is known; then add (Σ m z) × p_tip.
        let mut base_from = Isometry3::identity();
        for joint in &self.joints {
            base_from *= joint.prev_from_joint;
            let qj = joint.multiplier * q[joint.var] + joint.offset;
            let z = base_from.rotation * joint.axis.into_inner();
            let m = joint.multiplier;
            let mut col = jac.column_mut(joint.var);
            match joint.motion {
                Motion::Revolute => {
                    let z_cross_p = z.cross(&base_from.translation.vector);
                    for r in 0..3 {
                        col[r] -= m * z_cross_p[r];
                        col[3 + r] += m * z[r];
                    }
                    base_from.rotation *= UnitQuaternion::from_axis_angle(&joint.axis, qj);
                }
                Motion::Prismatic => {
                    for r in 0..3 {
                        col[r] += m * z[r];
                    }
                    base_from.translation.vector += z * qj;
                }
            }
        }
        let base_from_tip = base_from * self.last_from_tip;
        let p_tip = base_from_tip.translation.vector;
        for mut col in jac.column_iter_mut() {
            let w = Vector3::new(col[3], col[4], col[5]);
            let v = w.cross(&p_tip);
            for r in 0..3 {
                col[r] += v[r];
            }
        }
        Ok(base_from_tip)
    }
}

/// Joints from `base` down to `tip`, base first; `None` if `tip` is not below `base`.
fn path_joints(model: &RobotModel, base: usize, tip: usize) -> Option<Vec<usize>> {
    let mut path = Vec::new();
    let mut link = tip;
    while link != base {
        let j = model.links[link].parent_joint?;
        path.push(j);
        link = model.joints[j].parent_link;
    }
    if path.is_empty() {
        return None;
    }
    path.reverse();
    Some(path)
}

fn default_tip(model: &RobotModel, base: usize) -> Result<usize, KinError> {
    // (leaf, revolute joints on the path, only fixed joints after the last revolute)
    let mut leaves = Vec::new();
    let mut stack = vec![(base, 0usize, true)];
    while let Some((link, revolute, fixed_tail)) = stack.pop() {
        let children = &model.links[link].child_joints;
        if children.is_empty() && link != base {
            leaves.push((link, revolute, fixed_tail));
        }
        for &j in children {
            let joint = &model.joints[j];
            let (revolute, fixed_tail) = match joint.kind {
                JointKind::Revolute | JointKind::Continuous => (revolute + 1, true),
                JointKind::Fixed => (revolute, fixed_tail),
                JointKind::Prismatic | JointKind::Unsupported => (revolute, false),
            };
            stack.push((joint.child_link, revolute, fixed_tail));
        }
    }
    let base_name = || model.links[base].name.clone();
    if leaves.len() == 1 {
        return Ok(leaves[0].0);
    }
    let most = leaves
        .iter()
        .map(|l| l.1)
        .max()
        .ok_or_else(|| KinError::AmbiguousTip {
            base: base_name(),
            reason: "no link below it".into(),
        })?;
    let longest: Vec<_> = leaves.iter().filter(|l| l.1 == most).collect();
    let tool_like: Vec<_> = longest.iter().filter(|l| l.2).collect();
    match (longest.as_slice(), tool_like.as_slice()) {
        ([only], _) => Ok(only.0),
        (_, [only]) => Ok(only.0),
        (many, _) => {
            let mut names: Vec<&str> = many
                .iter()
                .map(|l| model.links[l.0].name.as_str())
                .collect();
            names.sort_unstable();
            Err(KinError::AmbiguousTip {
                base: base_name(),
                reason: format!("candidate tips {}", names.join(", ")),
            })
        }
    }
}

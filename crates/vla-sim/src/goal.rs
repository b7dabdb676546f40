//! Goal specs: what an episode asks for, as structured data (the JSON schema
//! is documented in sim/README.md). Success checks and the scripted expert
//! read goals, never instruction text.

use serde::{Deserialize, Serialize};

use crate::scene::{Geometry, SceneConfig};
use crate::SimError;

/// An object named by colour and shape ("red cube").
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    /// Colour name from the scene's `[colors]`.
    pub color: String,
    /// Shape name from the scene's `[[shapes]]`.
    pub shape: String,
}

impl ObjectRef {
    /// Builds a reference.
    pub fn new(color: &str, shape: &str) -> Self {
        Self {
            color: color.to_string(),
            shape: shape.to_string(),
        }
    }

    /// "red cube".
    pub fn phrase(&self) -> String {
        format!("{} {}", self.color, self.shape)
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.color, self.shape)
    }
}

/// A push direction, in the robot's base frame (x forward, y left).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// +y of the robot base.
    Left,
    /// −y of the robot base.
    Right,
    /// +x of the robot base (away from the robot).
    Forward,
    /// −x of the robot base (towards the robot).
    Back,
}

impl Direction {
    /// All four, in a fixed order.
    pub const ALL: [Direction; 4] = [Self::Left, Self::Right, Self::Forward, Self::Back];

    /// Unit vector in the robot base's xy plane.
    pub fn unit_in_base(self) -> [f64; 2] {
        match self {
            Self::Left => [0.0, 1.0],
            Self::Right => [0.0, -1.0],
            Self::Forward => [1.0, 0.0],
            Self::Back => [-1.0, 0.0],
        }
    }

    /// The word used in goal JSON and suite files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Left => "left",
            Self::Right => "right",
            Self::Forward => "forward",
            Self::Back => "back",
        }
    }
}

/// A task family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Pick up X.
    PickUp,
    /// Put X in/on receptacle Y.
    PutIn,
    /// Push X in a direction.
    Push,
    /// Move X next to Y.
    MoveNextTo,
    /// Stack X on Y.
    Stack,
}

impl Family {
    /// All families, in a fixed order.
    pub const ALL: [Family; 5] = [
        Self::PickUp,
        Self::PutIn,
        Self::Push,
        Self::MoveNextTo,
        Self::Stack,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PickUp => "pick_up",
            Self::PutIn => "put_in",
            Self::Push => "push",
            Self::MoveNextTo => "move_next_to",
            Self::Stack => "stack",
        }
    }
}

/// A structured goal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case", deny_unknown_fields)]
pub enum Goal {
    /// Lift `object` at least 5 cm and hold it.
    PickUp {
        /// The object.
        object: ObjectRef,
    },
    /// Put `object` in/on the receptacle `target`.
    PutIn {
        /// The object.
        object: ObjectRef,
        /// A bowl or plate.
        target: ObjectRef,
    },
    /// Push `object` at least 10 cm towards `direction`.
    Push {
        /// The object.
        object: ObjectRef,
        /// Where to.
        direction: Direction,
    },
    /// Put `object` on the table next to `target`.
    MoveNextTo {
        /// The object.
        object: ObjectRef,
        /// The reference object or receptacle.
        target: ObjectRef,
    },
    /// Put `object` on top of `target`.
    Stack {
        /// The object.
        object: ObjectRef,
        /// The object underneath.
        target: ObjectRef,
    },
}

impl Goal {
    /// The goal's family.
    pub fn family(&self) -> Family {
        match self {
            Self::PickUp { .. } => Family::PickUp,
            Self::PutIn { .. } => Family::PutIn,
            Self::Push { .. } => Family::Push,
            Self::MoveNextTo { .. } => Family::MoveNextTo,
            Self::Stack { .. } => Family::Stack,
        }
    }

    /// The object the robot manipulates.
    pub fn object(&self) -> &ObjectRef {
        match self {
            Self::PickUp { object }
            | Self::PutIn { object, .. }
            | Self::Push { object, .. }
            | Self::MoveNextTo { object, .. }
            | Self::Stack { object, .. } => object,
        }
    }

    /// The reference object, if the family has one.
    pub fn target(&self) -> Option<&ObjectRef> {
        match self {
            Self::PickUp { .. } | Self::Push { .. } => None,
            Self::PutIn { target, .. }
            | Self::MoveNextTo { target, .. }
            | Self::Stack { target, .. } => Some(target),
        }
    }

    /// Whether the goal names a target of the manipulated object's own
    /// colour ("stack the red cube on the red cylinder"), so that only the
    /// two shapes and the word order tell which is which.
    pub fn target_shares_colour(&self) -> bool {
        self.target()
            .is_some_and(|t| t.color == self.object().color)
    }

    /// Every object the goal names, object first.
    pub fn named_objects(&self) -> Vec<&ObjectRef> {
        let mut v = vec![self.object()];
        v.extend(self.target());
        v
    }

    /// Checks the goal against the scene's catalogue and the family rules:
    /// the manipulated object is a box, cylinder or sphere; push and stack
    /// move boxes and cylinders only (a ball rolls away); put_in needs a
    /// bowl or plate; stack needs a box or cylinder underneath; object and
    /// target differ.
    pub fn validate(&self, scene: &SceneConfig) -> Result<(), SimError> {
        let geometry = |r: &ObjectRef| -> Result<Geometry, SimError> {
            if !scene.colors.contains_key(&r.color) {
                return Err(SimError::Goal(format!(
                    "unknown colour {:?} (known: {})",
                    r.color,
                    scene.colors.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            let shape = scene.shape(&r.shape).ok_or_else(|| {
                SimError::Goal(format!(
                    "unknown shape {:?} (known: {})",
                    r.shape,
                    scene
                        .shapes
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            shape.geometry()
        };
        let object = geometry(self.object())?;
        if object.is_receptacle() {
            return Err(SimError::Goal(format!(
                "the {} is fixed to the table and cannot be moved",
                self.object()
            )));
        }
        let flat_sided = matches!(object, Geometry::Box { .. } | Geometry::Cylinder { .. });
        if let Some(target) = self.target() {
            if target == self.object() {
                return Err(SimError::Goal(format!(
                    "object and target are both the {target}"
                )));
            }
            let tg = geometry(target)?;
            match self {
                Self::PutIn { .. } if !tg.is_receptacle() => {
                    return Err(SimError::Goal(format!(
                        "put_in needs a bowl or plate as target, not the {target}"
                    )))
                }
                Self::Stack { .. }
                    if !matches!(tg, Geometry::Box { .. } | Geometry::Cylinder { .. }) =>
                {
                    return Err(SimError::Goal(format!(
                        "stack needs a box or cylinder underneath, not the {target}"
                    )))
                }
                _ => {}
            }
        }
        if matches!(self, Self::Push { .. } | Self::Stack { .. }) && !flat_sided {
            return Err(SimError::Goal(format!(
                "{} works with boxes and cylinders only, not the {}",
                self.family().as_str(),
                self.object()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goal_json_matches_documented_schema() {
        let g: Goal = serde_json::from_str(
            r#"{"family":"put_in","object":{"color":"red","shape":"cube"},"target":{"color":"green","shape":"bowl"}}"#,
        )
        .unwrap();
        assert_eq!(g.family(), Family::PutIn);
        assert_eq!(g.object(), &ObjectRef::new("red", "cube"));
        let push: Goal = serde_json::from_str(
            r#"{"family":"push","object":{"color":"blue","shape":"cylinder"},"direction":"left"}"#,
        )
        .unwrap();
        assert_eq!(push.target(), None);
        let back = serde_json::to_value(&push).unwrap();
        assert_eq!(back["direction"], "left");
        assert_eq!(back["family"], "push");
        // A misspelt key is an error, not silently ignored.
        assert!(serde_json::from_str::<Goal>(
            r#"{"family":"pick_up","object":{"color":"red","shape":"cube"},"taget":{}}"#
        )
        .is_err());
    }
}

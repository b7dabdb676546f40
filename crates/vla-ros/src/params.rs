//! ROS parameters with defaults: read once at start-up from what the node
//! was given (`--ros-args -p name:=value`, `--params-file FILE`, a launch
//! file), and written back with their effective values so that
//! `ros2 param get/list` shows them.

use std::cell::RefCell;
use std::collections::HashMap;

use r2r::{Parameter, ParameterValue};

use crate::RosError;

/// The parameters a node was given, and the defaults it used.
#[derive(Debug, Default)]
pub struct Params {
    given: HashMap<String, ParameterValue>,
    used_defaults: RefCell<Vec<(String, ParameterValue)>>,
}

fn wrong_type(name: &str, want: &str, got: &ParameterValue) -> RosError {
    RosError::Param {
        name: name.into(),
        message: format!("expected {want}, got {got:?}"),
    }
}

impl Params {
    /// The parameters `node` was started with.
    pub fn from_node(node: &r2r::Node) -> Self {
        let given = match node.params.lock() {
            Ok(table) => table
                .iter()
                .map(|(k, p)| (k.clone(), p.value.clone()))
                .collect(),
            Err(poisoned) => poisoned
                .into_inner()
                .iter()
                .map(|(k, p)| (k.clone(), p.value.clone()))
                .collect(),
        };
        Self::from_values(given)
    }

    /// Parameters from a table (for tests).
    pub fn from_values(given: HashMap<String, ParameterValue>) -> Self {
        Self {
            given,
            used_defaults: RefCell::new(Vec::new()),
        }
    }

    /// Writes the defaults used into `node`'s table, so that
    /// `ros2 param list/get` show every parameter with its effective value.
    pub fn write_back(&self, node: &r2r::Node) {
        let mut table = match node.params.lock() {
            Ok(t) => t,
            Err(poisoned) => poisoned.into_inner(),
        };
        for (name, value) in self.used_defaults.borrow().iter() {
            table.insert(name.clone(), Parameter::new(value.clone()));
        }
    }

    /// Names of the parameters that took their default.
    pub fn defaulted(&self) -> Vec<String> {
        self.used_defaults
            .borrow()
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The given value of `name`, or `default` (which is then recorded).
    fn get(&self, name: &str, default: ParameterValue) -> ParameterValue {
        match self.given.get(name) {
            Some(v) if *v != ParameterValue::NotSet => v.clone(),
            _ => {
                self.used_defaults
                    .borrow_mut()
                    .push((name.to_string(), default.clone()));
                default
            }
        }
    }

    /// A string parameter.
    pub fn string(&self, name: &str, default: &str) -> Result<String, RosError> {
        match self.get(name, ParameterValue::String(default.into())) {
            ParameterValue::String(s) => Ok(s),
            other => Err(wrong_type(name, "a string", &other)),
        }
    }

    /// A number parameter (integers are accepted too).
    pub fn f64(&self, name: &str, default: f64) -> Result<f64, RosError> {
        match self.get(name, ParameterValue::Double(default)) {
            ParameterValue::Double(v) => Ok(v),
            ParameterValue::Integer(v) => Ok(v as f64),
            other => Err(wrong_type(name, "a number", &other)),
        }
    }

    /// A non-negative integer parameter.
    pub fn u32(&self, name: &str, default: u32) -> Result<u32, RosError> {
        match self.get(name, ParameterValue::Integer(default.into())) {
            ParameterValue::Integer(v) => u32::try_from(v).map_err(|_| RosError::Param {
                name: name.into(),
                message: format!("{v} is out of range 0..={}", u32::MAX),
            }),
            other => Err(wrong_type(name, "an integer", &other)),
        }
    }

    /// A list of strings (an empty list may arrive untyped from YAML `[]`).
    pub fn strings(&self, name: &str, default: &[&str]) -> Result<Vec<String>, RosError> {
        let d = default.iter().map(|s| s.to_string()).collect();
        match self.get(name, ParameterValue::StringArray(d)) {
            // `[""]` also means empty: ROS parameter files cannot hold `[]`.
            ParameterValue::StringArray(v) if v.iter().all(String::is_empty) => Ok(Vec::new()),
            ParameterValue::StringArray(v) => Ok(v),
            ParameterValue::String(s) if s.is_empty() => Ok(Vec::new()),
            other => Err(wrong_type(name, "a list of strings", &other)),
        }
    }

    /// A list of numbers.
    pub fn f64s(&self, name: &str, default: &[f64]) -> Result<Vec<f64>, RosError> {
        match self.get(name, ParameterValue::DoubleArray(default.to_vec())) {
            ParameterValue::DoubleArray(v) => Ok(v),
            ParameterValue::IntegerArray(v) => Ok(v.into_iter().map(|i| i as f64).collect()),
            ParameterValue::StringArray(v) if v.is_empty() => Ok(Vec::new()),
            other => Err(wrong_type(name, "a list of numbers", &other)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn given_values_win_defaults_are_recorded_and_types_are_checked() {
        let mut given = HashMap::new();
        given.insert("rate".to_string(), ParameterValue::Integer(20));
        given.insert("policy".to_string(), ParameterValue::Double(1.0));
        given.insert(
            "joints".to_string(),
            ParameterValue::StringArray(vec![String::new()]),
        );
        let p = Params::from_values(given);
        assert_eq!(p.f64("rate", 10.0).unwrap(), 20.0);
        assert_eq!(
            p.string("urdf", "urdf/panda.urdf").unwrap(),
            "urdf/panda.urdf"
        );
        assert_eq!(p.defaulted(), vec!["urdf"]);
        let err = p.string("policy", "policies/default").unwrap_err();
        assert!(err.to_string().contains("expected a string"), "{err}");
        assert!(
            p.strings("joints", &["a"]).unwrap().is_empty(),
            "[\"\"] is empty"
        );
        assert_eq!(p.strings("fingers", &["a", "b"]).unwrap(), vec!["a", "b"]);
        assert!(p.u32("width", 0).is_ok());
    }
}

//! Instructions: rendering phrasing templates for a goal, and the small
//! vocabulary parser that turns a typed task ("put the red cube in the green
//! bowl") into a goal so that `vla sim --task` can build a matching scene.
//! The parser is for building scenes only; a learned policy sees the text.

use rand::seq::SliceRandom;
use rand::Rng;

use crate::goal::{Direction, Goal, ObjectRef};
use crate::scene::SceneConfig;
use crate::suite::WordsConfig;
use crate::SimError;

/// Words the parser accepts besides colours and shapes.
const FUNCTION_WORDS: &[&str] = &[
    "a",
    "an",
    "and",
    "away",
    "back",
    "backward",
    "backwards",
    "beside",
    "bring",
    "by",
    "close",
    "down",
    "drop",
    "forward",
    "forwards",
    "from",
    "get",
    "grab",
    "in",
    "inside",
    "into",
    "it",
    "left",
    "lift",
    "move",
    "near",
    "next",
    "nudge",
    "of",
    "off",
    "on",
    "onto",
    "pick",
    "place",
    "please",
    "push",
    "put",
    "raise",
    "right",
    "robot",
    "set",
    "shove",
    "slide",
    "stack",
    "take",
    "the",
    "then",
    "to",
    "top",
    "toward",
    "towards",
    "table",
    "up",
    "you",
];

/// Verbs that make a single named object a pick-up task.
const PICK_VERBS: &[&str] = &["pick", "lift", "grab", "raise", "take", "get"];

/// Words that make a two-object instruction a move-next-to task.
const NEXT_TO_WORDS: &[&str] = &["next", "beside", "near", "by", "close"];

/// Shape synonyms accepted by the parser.
const SHAPE_SYNONYMS: &[(&str, &str)] = &[("block", "cube"), ("ball", "sphere")];

/// Renders `template` for `goal`, substituting `{object}`, `{target}`,
/// `{prep}` (the receptacle's preposition) and `{direction}`; word variants
/// are drawn with `rng`.
pub fn render_template(
    template: &str,
    goal: &Goal,
    words: &WordsConfig,
    rng: &mut impl Rng,
) -> Result<String, SimError> {
    let mut text = template.replace("{object}", &goal.object().phrase());
    if text.contains("{target}") {
        let target = goal.target().ok_or_else(|| {
            SimError::invalid(
                "template",
                format!("{template:?} names a target its family lacks"),
            )
        })?;
        text = text.replace("{target}", &target.phrase());
        if text.contains("{prep}") {
            let preps = words.prepositions.get(&target.shape).ok_or_else(|| {
                SimError::invalid("template", format!("no preposition for {:?}", target.shape))
            })?;
            let prep = preps.choose(rng).ok_or_else(|| {
                SimError::invalid(
                    "template",
                    format!("empty prepositions for {:?}", target.shape),
                )
            })?;
            text = text.replace("{prep}", prep);
        }
    }
    if text.contains("{direction}") {
        let Goal::Push { direction, .. } = goal else {
            return Err(SimError::invalid(
                "template",
                format!("{template:?} names a direction but the goal is not a push"),
            ));
        };
        let phrase = words.direction(*direction).choose(rng).ok_or_else(|| {
            SimError::invalid("template", format!("no words for {}", direction.as_str()))
        })?;
        text = text.replace("{direction}", phrase);
    }
    if text.contains('{') || text.contains('}') {
        return Err(SimError::invalid(
            "template",
            format!("{template:?} has a placeholder this goal does not fill"),
        ));
    }
    Ok(text)
}

/// Every word the parser knows for this scene, sorted.
pub fn vocabulary(scene: &SceneConfig) -> Vec<String> {
    let mut v: Vec<String> = FUNCTION_WORDS.iter().map(|s| s.to_string()).collect();
    v.extend(scene.colors.keys().cloned());
    v.extend(scene.shapes.iter().map(|s| s.name.clone()));
    v.extend(SHAPE_SYNONYMS.iter().map(|(w, _)| w.to_string()));
    v.sort();
    v.dedup();
    v
}

/// Parses a typed task into a goal of this scene. Unknown words are an error
/// that lists the vocabulary.
pub fn parse_instruction(text: &str, scene: &SceneConfig) -> Result<Goal, SimError> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let unparsable = |reason: &str| SimError::Unparsable {
        text: text.to_string(),
        reason: reason.to_string(),
    };
    if words.is_empty() {
        return Err(unparsable("it has no words"));
    }
    let vocab = vocabulary(scene);
    let unknown: Vec<String> = words
        .iter()
        .filter(|w| vocab.binary_search_by(|v| v.as_str().cmp(w)).is_err())
        .map(|w| w.to_string())
        .collect();
    if !unknown.is_empty() {
        return Err(SimError::UnknownWords {
            text: text.to_string(),
            words: unknown,
            vocabulary: vocab.join(", "),
        });
    }
    let shape_of = |w: &str| -> Option<String> {
        if scene.shape(w).is_some() {
            return Some(w.to_string());
        }
        SHAPE_SYNONYMS
            .iter()
            .find(|(syn, _)| *syn == w)
            .map(|(_, s)| s.to_string())
    };
    let mut phrases = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        if scene.colors.contains_key(w) {
            match words.get(i + 1).and_then(|n| shape_of(n)) {
                Some(shape) => {
                    phrases.push(ObjectRef::new(w, &shape));
                    i += 2;
                    continue;
                }
                None => {
                    return Err(unparsable(&format!(
                        "the colour {w:?} must be followed by a shape"
                    )))
                }
            }
        }
        if shape_of(w).is_some() {
            return Err(unparsable(&format!(
                "name objects by colour and shape (\"red {w}\")"
            )));
        }
        i += 1;
    }
    let has = |list: &[&str]| words.iter().any(|w| list.contains(w));
    let mut directions = Vec::new();
    for (k, w) in words.iter().enumerate() {
        let d = match *w {
            "left" => Some(Direction::Left),
            "right" => Some(Direction::Right),
            "forward" | "forwards" | "away" => Some(Direction::Forward),
            "back" | "backward" | "backwards" => Some(Direction::Back),
            "towards" | "toward"
                if words
                    .get(k + 1..)
                    .is_some_and(|r| r.contains(&"robot") || r.contains(&"you")) =>
            {
                Some(Direction::Back)
            }
            _ => None,
        };
        if let Some(d) = d {
            if !directions.contains(&d) {
                directions.push(d);
            }
        }
    }
    if directions.len() > 1 {
        return Err(unparsable("it names more than one direction"));
    }
    let goal = match (phrases.as_slice(), directions.first()) {
        ([object], Some(&direction)) => Goal::Push {
            object: object.clone(),
            direction,
        },
        ([object], None) => {
            if !has(PICK_VERBS) {
                return Err(unparsable(
                    "with one object, say where to push it or to pick it up",
                ));
            }
            Goal::PickUp {
                object: object.clone(),
            }
        }
        ([_, _], Some(_)) => {
            return Err(unparsable(
                "directions relative to another object are not supported",
            ))
        }
        ([object, target], None) => {
            let target_is_receptacle = scene
                .shape(&target.shape)
                .and_then(|s| s.geometry().ok())
                .is_some_and(|g| g.is_receptacle());
            if has(NEXT_TO_WORDS) {
                Goal::MoveNextTo {
                    object: object.clone(),
                    target: target.clone(),
                }
            } else if target_is_receptacle {
                Goal::PutIn {
                    object: object.clone(),
                    target: target.clone(),
                }
            } else if has(&["on", "onto", "top", "stack"]) {
                Goal::Stack {
                    object: object.clone(),
                    target: target.clone(),
                }
            } else {
                return Err(unparsable(
                    "say whether the first object goes on, in or next to the second",
                ));
            }
        }
        ([], _) => return Err(unparsable("it names no object (e.g. \"the red cube\")")),
        _ => return Err(unparsable("it names more than two objects")),
    };
    goal.validate(scene)?;
    Ok(goal)
}

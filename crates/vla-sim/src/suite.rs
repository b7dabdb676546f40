//! Task suites (`sim/suites/*.toml`): task families with phrasing templates,
//! held-out splits, and the sampling of one episode's task from a seed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::goal::{Direction, Family, Goal, ObjectRef};
use crate::language::render_template;
use crate::scene::SceneConfig;
use crate::SimError;

/// Train or held-out evaluation data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Seen in training.
    Train,
    /// Held out for evaluation.
    Eval,
}

impl Split {
    /// "train" or "eval".
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Eval => "eval",
        }
    }
}

impl std::str::FromStr for Split {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, SimError> {
        match s {
            "train" => Ok(Self::Train),
            "eval" => Ok(Self::Eval),
            other => Err(SimError::invalid(
                "split",
                format!("{other:?} is not a split (train, eval)"),
            )),
        }
    }
}

/// A suite file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteConfig {
    /// Suite name.
    pub name: String,
    /// Scene name (`sim/scenes/<scene>.toml`).
    pub scene: String,
    /// Policy steps per episode.
    pub max_steps: usize,
    /// Inclusive range of distractor objects per scene.
    pub distractors: [usize; 2],
    /// Layout seed ranges per split.
    pub layout_seeds: LayoutSeeds,
    /// Held-out colour–shape combinations.
    pub combos: CombosConfig,
    /// Words substituted into templates.
    pub words: WordsConfig,
    /// The task families.
    pub families: Vec<FamilyConfig>,
}

/// Half-open ranges of layout seeds per split.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutSeeds {
    /// Train layouts.
    pub train: [u64; 2],
    /// Eval layouts.
    pub eval: [u64; 2],
}

/// Held-out combinations.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CombosConfig {
    /// "colour shape" pairs of the eval split; all others are train.
    pub eval: Vec<String>,
}

/// Words substituted into templates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WordsConfig {
    /// `{prep}` per receptacle shape.
    pub prepositions: BTreeMap<String, Vec<String>>,
    /// `{direction}` variants for left.
    pub left: Vec<String>,
    /// `{direction}` variants for right.
    pub right: Vec<String>,
    /// `{direction}` variants for forward.
    pub forward: Vec<String>,
    /// `{direction}` variants for back.
    pub back: Vec<String>,
}

impl WordsConfig {
    /// Phrasings of a direction.
    pub fn direction(&self, d: Direction) -> &[String] {
        match d {
            Direction::Left => &self.left,
            Direction::Right => &self.right,
            Direction::Forward => &self.forward,
            Direction::Back => &self.back,
        }
    }
}

/// One task family of a suite.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilyConfig {
    /// Which family.
    pub name: Family,
    /// Relative sampling weight.
    pub weight: f64,
    /// Shapes the manipulated object is drawn from.
    pub objects: Vec<String>,
    /// Shapes the target is drawn from (families with a target).
    #[serde(default)]
    pub targets: Vec<String>,
    /// Directions (push).
    #[serde(default)]
    pub directions: Vec<Direction>,
    /// Phrasing templates.
    pub templates: Vec<Template>,
}

/// A phrasing template: `{object}`, `{target}`, `{prep}`, `{direction}` are substituted.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// The text.
    pub text: String,
    /// Its split.
    pub split: Split,
}

/// One episode's task: the goal, its instruction and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// The structured goal.
    pub goal: Goal,
    /// The instruction text the policy sees.
    pub instruction: String,
    /// Split of the template and combinations (None for user-given text).
    pub split: Option<Split>,
    /// The template used (None for user-given text).
    pub template: Option<String>,
    /// Seed of the object layout.
    pub layout_seed: u64,
    /// Distractor objects in the scene (beyond those the goal names).
    pub distractors: usize,
    /// Colour–shape combinations distractors may use.
    pub distractor_split: Option<Split>,
}

/// A loaded suite with its scene.
#[derive(Debug, Clone)]
pub struct TaskSuite {
    /// The suite file.
    pub config: SuiteConfig,
    /// Its scene.
    pub scene: SceneConfig,
    /// Where the suite was loaded from.
    pub path: PathBuf,
}

impl TaskSuite {
    /// Loads a suite by name (`<root>/sim/suites/<name>.toml`) or by path
    /// (anything ending in `.toml`), with its scene from the sibling
    /// `scenes/` folder.
    pub fn load(name_or_path: &str, root: &Path) -> Result<Self, SimError> {
        let path = if name_or_path.ends_with(".toml") {
            PathBuf::from(name_or_path)
        } else {
            if name_or_path.is_empty()
                || !name_or_path
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(SimError::invalid(
                    "suite",
                    format!("{name_or_path:?} is neither a suite name nor a .toml file"),
                ));
            }
            root.join("sim")
                .join("suites")
                .join(format!("{name_or_path}.toml"))
        };
        let text = std::fs::read_to_string(&path).map_err(|e| SimError::io(&path, e))?;
        let config: SuiteConfig = toml::from_str(&text).map_err(|e| SimError::Format {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let sim_dir = path
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let scene_path = sim_dir
            .join("scenes")
            .join(format!("{}.toml", config.scene));
        let scene = SceneConfig::load(&scene_path)?;
        let suite = Self {
            config,
            scene,
            path,
        };
        suite.validate()?;
        Ok(suite)
    }

    fn validate(&self) -> Result<(), SimError> {
        let c = &self.config;
        let what = format!("suite {:?}", c.name);
        if c.max_steps == 0 || c.distractors[0] > c.distractors[1] || c.distractors[1] > 8 {
            return Err(SimError::invalid(
                &what,
                "max_steps must be ≥ 1 and distractors an increasing range up to 8",
            ));
        }
        for (name, r) in [
            ("train", c.layout_seeds.train),
            ("eval", c.layout_seeds.eval),
        ] {
            if r[0] >= r[1] {
                return Err(SimError::invalid(
                    &what,
                    format!("layout_seeds.{name} is empty"),
                ));
            }
        }
        let (t, e) = (c.layout_seeds.train, c.layout_seeds.eval);
        if t[0] < e[1] && e[0] < t[1] {
            return Err(SimError::invalid(
                &what,
                "train and eval layout seeds overlap",
            ));
        }
        for combo in &c.combos.eval {
            let parts: Vec<&str> = combo.split_whitespace().collect();
            if parts.len() != 2
                || !self.scene.colors.contains_key(parts[0])
                || self.scene.shape(parts[1]).is_none()
            {
                return Err(SimError::invalid(
                    &what,
                    format!("combo {combo:?} is not \"<colour> <shape>\" of the scene"),
                ));
            }
        }
        if c.families.is_empty() {
            return Err(SimError::invalid(&what, "no families"));
        }
        for f in &c.families {
            let fw = format!("{what} family {}", f.name.as_str());
            if !(f.weight.is_finite() && f.weight > 0.0) {
                return Err(SimError::invalid(&fw, "weight must be positive"));
            }
            for split in [Split::Train, Split::Eval] {
                if !f.templates.iter().any(|t| t.split == split) {
                    return Err(SimError::invalid(
                        &fw,
                        format!("no {} template", split.as_str()),
                    ));
                }
            }
            if f.objects.is_empty() {
                return Err(SimError::invalid(&fw, "no object shapes"));
            }
            let needs_target = !matches!(f.name, Family::PickUp | Family::Push);
            if needs_target == f.targets.is_empty() {
                return Err(SimError::invalid(
                    &fw,
                    if needs_target {
                        "needs target shapes"
                    } else {
                        "takes no targets"
                    },
                ));
            }
            if (f.name == Family::Push) == f.directions.is_empty() {
                return Err(SimError::invalid(
                    &fw,
                    "directions are for push only, and required there",
                ));
            }
            // Every listed shape pair must make a valid goal.
            let color = self.scene.colors.keys().next().cloned().unwrap_or_default();
            let other = self
                .scene
                .colors
                .keys()
                .nth(1)
                .cloned()
                .unwrap_or(color.clone());
            for o in &f.objects {
                let targets: Vec<Option<&String>> = if f.targets.is_empty() {
                    vec![None]
                } else {
                    f.targets.iter().map(Some).collect()
                };
                for t in targets {
                    let goal = make_goal(
                        f.name,
                        ObjectRef::new(&color, o),
                        t.map(|t| ObjectRef::new(&other, t)),
                        Direction::Left,
                    );
                    goal.validate(&self.scene)
                        .map_err(|e| SimError::invalid(&fw, e.to_string()))?;
                    if let (Goal::PutIn { target, .. }, Some(_)) = (&goal, t) {
                        if !c.words.prepositions.contains_key(&target.shape) {
                            return Err(SimError::invalid(
                                &fw,
                                format!("no preposition for {:?}", target.shape),
                            ));
                        }
                    }
                }
            }
            for t in &f.templates {
                let probe = make_goal(
                    f.name,
                    ObjectRef::new(&color, &f.objects[0]),
                    f.targets.first().map(|s| ObjectRef::new(&other, s)),
                    f.directions.first().copied().unwrap_or(Direction::Left),
                );
                let mut rng = ChaCha8Rng::seed_from_u64(0);
                render_template(&t.text, &probe, &c.words, &mut rng)
                    .map_err(|e| SimError::invalid(&fw, e.to_string()))?;
            }
        }
        for d in Direction::ALL {
            if c.words.direction(d).is_empty() {
                return Err(SimError::invalid(
                    &what,
                    format!("no words for direction {}", d.as_str()),
                ));
            }
        }
        Ok(())
    }

    /// Split of a colour–shape combination.
    pub fn combo_split(&self, r: &ObjectRef) -> Split {
        let key = r.phrase();
        if self
            .config
            .combos
            .eval
            .iter()
            .any(|c| c.split_whitespace().collect::<Vec<_>>().join(" ") == key)
        {
            Split::Eval
        } else {
            Split::Train
        }
    }

    /// Every colour–shape combination of the scene whose shape is in `shapes`
    /// and whose split is `split` (any split when `None`).
    pub fn combos(&self, shapes: &[String], split: Option<Split>) -> Vec<ObjectRef> {
        let mut out = Vec::new();
        for color in self.scene.colors.keys() {
            for shape in shapes {
                let r = ObjectRef::new(color, shape);
                if split.is_none_or(|s| self.combo_split(&r) == s) {
                    out.push(r);
                }
            }
        }
        out
    }

    /// Names of all dynamic (non-receptacle) shapes of the scene.
    pub fn movable_shapes(&self) -> Vec<String> {
        self.scene
            .shapes
            .iter()
            .filter(|s| s.geometry().is_ok_and(|g| !g.is_receptacle()))
            .map(|s| s.name.clone())
            .collect()
    }

    /// Objects distractors are drawn from: every colour–shape combination of
    /// the scene (movable shapes and receptacles) in `split`, or all of them
    /// for `None`.
    pub fn distractor_pool(&self, split: Option<Split>) -> Vec<ObjectRef> {
        let shapes: Vec<String> = self.scene.shapes.iter().map(|s| s.name.clone()).collect();
        self.combos(&shapes, split)
    }

    /// The part of `pool` whose colour is one the goal names, for layouts in
    /// which the named objects must be told apart from distractors by shape
    /// ("the red cube" beside a red cylinder): the policy's hardest case
    /// (policies/default/README.md, session 14). Objects the goal names are
    /// left out (the layout never repeats them). Falls back to `pool` when
    /// no distractor shares a colour with the goal.
    pub fn same_colour_pool(pool: &[ObjectRef], goal: &Goal) -> Vec<ObjectRef> {
        let named = goal.named_objects();
        let same: Vec<ObjectRef> = pool
            .iter()
            .filter(|p| !named.contains(p) && named.iter().any(|n| n.color == p.color))
            .cloned()
            .collect();
        if same.is_empty() {
            pool.to_vec()
        } else {
            same
        }
    }

    /// The layout seed of episode `episode_seed` in `split`.
    pub fn layout_seed(&self, split: Split, episode_seed: u64) -> u64 {
        let [lo, hi] = match split {
            Split::Train => self.config.layout_seeds.train,
            Split::Eval => self.config.layout_seeds.eval,
        };
        lo + episode_seed % (hi - lo)
    }

    /// The task at episode seed `*next_seed`, which then moves past it
    /// (the episode's seed and task are returned). With
    /// `same_colour_pairs`, seeds whose task does not name a target of the
    /// object's own colour ([`Goal::target_shares_colour`]) are skipped:
    /// the layouts where the policy swaps the two roles most
    /// (policies/default/README.md, session 43). Without it this is
    /// [`Self::sample_task`] on consecutive seeds. An error if
    /// [`MAX_SKIPPED_SEEDS`] seeds in a row are skipped (a suite without
    /// such tasks).
    pub fn draw_task(
        &self,
        split: Split,
        next_seed: &mut u64,
        same_colour_pairs: bool,
    ) -> Result<(u64, Task), SimError> {
        for _ in 0..=MAX_SKIPPED_SEEDS {
            let seed = *next_seed;
            *next_seed = seed.wrapping_add(1);
            let task = self.sample_task(split, seed)?;
            if !same_colour_pairs || task.goal.target_shares_colour() {
                return Ok((seed, task));
            }
        }
        Err(SimError::invalid(
            format!("suite {:?}", self.config.name),
            format!(
                "no task naming two objects of one colour in {MAX_SKIPPED_SEEDS} seeds of the {} split",
                split.as_str()
            ),
        ))
    }

    /// Draws the task of one episode. In the train split, templates and every
    /// named object come from train data; in the eval split, templates are
    /// eval templates and the manipulated object is a held-out combination
    /// (its target any combination), so both phrasing and objects are unseen.
    pub fn sample_task(&self, split: Split, episode_seed: u64) -> Result<Task, SimError> {
        let mut rng = ChaCha8Rng::seed_from_u64(episode_seed ^ 0x5eed_7a5c);
        let c = &self.config;
        let total: f64 = c.families.iter().map(|f| f.weight).sum();
        for _attempt in 0..64 {
            let mut pick = rng.gen::<f64>() * total;
            let mut family = &c.families[0];
            for f in &c.families {
                if pick < f.weight {
                    family = f;
                    break;
                }
                pick -= f.weight;
            }
            let objects = self.combos(&family.objects, Some(split));
            let targets = match split {
                Split::Train => self.combos(&family.targets, Some(Split::Train)),
                Split::Eval => self.combos(&family.targets, None),
            };
            let Some(object) = objects.choose(&mut rng).cloned() else {
                continue;
            };
            let target = if family.targets.is_empty() {
                None
            } else {
                let choices: Vec<&ObjectRef> = targets.iter().filter(|t| **t != object).collect();
                match choices.choose(&mut rng) {
                    Some(t) => Some((*t).clone()),
                    None => continue,
                }
            };
            let direction = family
                .directions
                .choose(&mut rng)
                .copied()
                .unwrap_or(Direction::Left);
            let goal = make_goal(family.name, object, target, direction);
            goal.validate(&self.scene)?;
            let templates: Vec<&Template> = family
                .templates
                .iter()
                .filter(|t| t.split == split)
                .collect();
            let Some(template) = templates.choose(&mut rng) else {
                continue;
            };
            let instruction = render_template(&template.text, &goal, &c.words, &mut rng)?;
            let distractors = rng.gen_range(c.distractors[0]..=c.distractors[1]);
            return Ok(Task {
                goal,
                instruction,
                split: Some(split),
                template: Some(template.text.clone()),
                layout_seed: self.layout_seed(split, episode_seed),
                distractors,
                distractor_split: match split {
                    Split::Train => Some(Split::Train),
                    Split::Eval => None,
                },
            });
        }
        Err(SimError::invalid(
            format!("suite {:?}", c.name),
            format!("no task could be drawn for the {} split", split.as_str()),
        ))
    }
}

/// Seeds [`TaskSuite::draw_task`] skips in a row before giving up.
pub const MAX_SKIPPED_SEEDS: usize = 10_000;

/// Assembles a goal of `family` from its parts (`target` ignored where the
/// family has none, `direction` used by push only).
pub fn make_goal(
    family: Family,
    object: ObjectRef,
    target: Option<ObjectRef>,
    direction: Direction,
) -> Goal {
    let t =
        |target: Option<ObjectRef>, object: &ObjectRef| target.unwrap_or_else(|| object.clone());
    match family {
        Family::PickUp => Goal::PickUp { object },
        Family::Push => Goal::Push { object, direction },
        Family::PutIn => Goal::PutIn {
            target: t(target, &object),
            object,
        },
        Family::MoveNextTo => Goal::MoveNextTo {
            target: t(target, &object),
            object,
        },
        Family::Stack => Goal::Stack {
            target: t(target, &object),
            object,
        },
    }
}

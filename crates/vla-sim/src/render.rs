//! The camera: turns the world state into `vla-render` primitives (table,
//! robot link visuals at their FK poses, objects) and renders RGB + depth,
//! with optional per-episode domain randomisation.

use std::collections::HashMap;

use nalgebra::{Isometry3, Point3, Vector3};
use vla_kinematics::Geometry as UrdfGeometry;
use vla_render::{
    Camera, DomainRandomization, Lighting, Primitive, RenderConfig, RenderOutput, Renderer, Shape,
};

use crate::scene::{Geometry, SceneConfig};
use crate::world::World;
use crate::SimError;

/// The simulator's camera and renderer for one episode.
pub struct SimCamera {
    renderer: Renderer,
    camera: Camera,
    lighting: Lighting,
    randomization: DomainRandomization,
    seed: u64,
}

impl std::fmt::Debug for SimCamera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCamera")
            .field("camera", &self.camera)
            .field("seed", &self.seed)
            .finish()
    }
}

fn render_err(e: impl std::fmt::Display) -> SimError {
    SimError::Render(e.to_string())
}

/// The scene's nominal camera.
pub fn scene_camera(scene: &SceneConfig) -> Camera {
    let c = &scene.camera;
    Camera::look_at(
        Point3::from(c.eye_m),
        Point3::from(c.target_m),
        Vector3::from(c.up),
        c.vertical_fov_deg.to_radians(),
        c.width_px,
        c.height_px,
    )
}

impl SimCamera {
    /// A camera for the scene; `randomization` (all zero = off) perturbs
    /// light, camera pose and table texture once per episode from `seed`
    /// and object colours every frame from the same seed.
    pub fn new(
        scene: &SceneConfig,
        randomization: DomainRandomization,
        seed: u64,
    ) -> Result<Self, SimError> {
        let mut renderer = Renderer::new(RenderConfig::default()).map_err(render_err)?;
        let mut camera = scene_camera(scene);
        let l = &scene.light;
        let mut lighting = Lighting {
            sun_direction_in_world: Vector3::from(l.direction),
            sun_intensity: l.diffuse,
            ambient: l.ambient,
            shadows: true,
        };
        lighting.validate().map_err(render_err)?;
        lighting = randomization
            .lighting(seed, &lighting)
            .map_err(render_err)?;
        camera = randomization.camera(seed, &camera).map_err(render_err)?;
        let texture = randomization
            .texture(seed, renderer.config().plane_texture)
            .map_err(render_err)?;
        renderer.set_plane_texture(texture).map_err(render_err)?;
        Ok(Self {
            renderer,
            camera,
            lighting,
            randomization,
            seed,
        })
    }

    /// The camera in use (intrinsics via `intrinsics_k()`).
    pub fn camera(&self) -> &Camera {
        &self.camera
    }

    /// Renders the world as the camera sees it now.
    pub fn render(&mut self, world: &World) -> Result<RenderOutput, SimError> {
        self.render_primitives(primitives(world)?)
    }

    /// Renders a scene already turned into [`primitives`] (e.g. on another
    /// thread than the one stepping the world).
    pub fn render_primitives(
        &mut self,
        mut prims: Vec<Primitive>,
    ) -> Result<RenderOutput, SimError> {
        self.randomization
            .colours(self.seed, &mut prims)
            .map_err(render_err)?;
        self.renderer
            .render(&prims, &self.camera, &self.lighting)
            .map_err(render_err)
    }
}

/// The world as render primitives: table, robot visuals, objects.
pub fn primitives(world: &World) -> Result<Vec<Primitive>, SimError> {
    Ok(primitives_at(world, &world.arm().world_from_links()?))
}

/// [`primitives`] with the robot links at `world_from_links` (from
/// [`crate::arm::Arm::world_from_links`], when the caller has them already).
pub fn primitives_at(
    world: &World,
    world_from_links: &HashMap<String, Isometry3<f64>>,
) -> Vec<Primitive> {
    let scene = world.scene();
    let t = &scene.table;
    let mut prims = vec![
        Primitive {
            world_from_shape: Isometry3::translation(
                t.centre_xy_m[0],
                t.centre_xy_m[1],
                t.height_m,
            ),
            shape: Shape::Plane {
                half_extents_m: [t.size_xy_m[0] / 2.0, t.size_xy_m[1] / 2.0],
            },
            rgb: t.rgb,
            casts_shadow: false,
        },
        Primitive {
            world_from_shape: Isometry3::translation(
                t.centre_xy_m[0],
                t.centre_xy_m[1],
                t.height_m - t.thickness_m / 2.0 - 0.001,
            ),
            shape: Shape::Box {
                half_extents_m: [
                    t.size_xy_m[0] / 2.0,
                    t.size_xy_m[1] / 2.0,
                    t.thickness_m / 2.0,
                ],
            },
            rgb: t.rgb.map(|c| c * 0.8),
            casts_shadow: false,
        },
    ];
    for v in world.arm().visuals_at(world_from_links) {
        let (pose, rgba) = (v.world_from_visual, v.rgba);
        let shape = match v.geometry {
            UrdfGeometry::Box { size_m } => Shape::Box {
                half_extents_m: [size_m[0] / 2.0, size_m[1] / 2.0, size_m[2] / 2.0],
            },
            UrdfGeometry::Cylinder { radius_m, length_m } => Shape::Cylinder {
                radius_m,
                half_height_m: length_m / 2.0,
            },
            UrdfGeometry::Sphere { radius_m } => Shape::Sphere { radius_m },
        };
        prims.push(Primitive {
            world_from_shape: pose,
            shape,
            rgb: [rgba[0], rgba[1], rgba[2]],
            casts_shadow: true,
        });
    }
    for (i, o) in world.objects().iter().enumerate() {
        let pose = world.pose(i);
        let (world_from_shape, shape) = match o.geometry {
            Geometry::Box { half_extents_m } => (pose, Shape::Box { half_extents_m }),
            Geometry::Cylinder {
                radius_m,
                half_height_m,
            } => (
                pose,
                Shape::Cylinder {
                    radius_m,
                    half_height_m,
                },
            ),
            Geometry::Sphere { radius_m } => (pose, Shape::Sphere { radius_m }),
            Geometry::Bowl { radius_m, height_m } => (
                pose * Isometry3::translation(0.0, 0.0, height_m / 2.0),
                Shape::Bowl { radius_m, height_m },
            ),
            Geometry::Plate { radius_m, height_m } => (
                pose * Isometry3::translation(0.0, 0.0, height_m / 2.0),
                Shape::Cylinder {
                    radius_m,
                    half_height_m: height_m / 2.0,
                },
            ),
        };
        prims.push(Primitive {
            world_from_shape,
            shape,
            rgb: o.rgb,
            casts_shadow: true,
        });
    }
    prims
}

//! The camera: turns the world state into `vla-render` primitives (table,
//! robot link visuals at their FK poses, objects) and renders RGB + depth,
//! with optional per-episode domain randomisation.

use std::collections::HashMap;

use nalgebra::{Isometry3, Point3, Vector3};
use vla_kinematics::{Geometry as UrdfGeometry, Visual};
use vla_render::{
    Camera, DomainRandomization, Lighting, Primitive, RenderConfig, RenderOutput, Renderer, Shape,
};

use crate::scene::{Geometry, SceneConfig, WristCameraConfig};
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

/// The camera on the hand ([`WristCameraConfig`]): it moves with the TCP,
/// sees the same light, table texture and object colours as the scene's
/// camera of the episode, and has no pose jitter (it is bolted on).
pub struct WristCamera {
    renderer: Renderer,
    tcp_from_camera: Isometry3<f64>,
    /// Intrinsics and size; its pose is set per frame.
    template: Camera,
    lighting: Lighting,
    randomization: DomainRandomization,
    seed: u64,
}

impl std::fmt::Debug for WristCamera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WristCamera")
            .field("tcp_from_camera", &self.tcp_from_camera)
            .field("seed", &self.seed)
            .finish()
    }
}

/// The wrist camera in the TCP frame (its `world_from_camera` is
/// `tcp_from_camera`).
pub fn wrist_camera_in_tcp(config: &WristCameraConfig) -> Camera {
    Camera::look_at(
        Point3::from(config.eye_in_tcp_m),
        Point3::from(config.target_in_tcp_m),
        Vector3::from(config.up_in_tcp),
        config.vertical_fov_deg.to_radians(),
        config.width_px,
        config.height_px,
    )
}

impl WristCamera {
    /// The scene's wrist camera for an episode, or `None` when the scene has
    /// none. `randomization` and `seed` as for [`SimCamera::new`].
    pub fn new(
        scene: &SceneConfig,
        randomization: DomainRandomization,
        seed: u64,
    ) -> Result<Option<Self>, SimError> {
        let Some(config) = &scene.wrist_camera else {
            return Ok(None);
        };
        let template = wrist_camera_in_tcp(config);
        template.validate().map_err(render_err)?;
        let mut renderer = Renderer::new(RenderConfig::default()).map_err(render_err)?;
        let l = &scene.light;
        let lighting = randomization
            .lighting(
                seed,
                &Lighting {
                    sun_direction_in_world: Vector3::from(l.direction),
                    sun_intensity: l.diffuse,
                    ambient: l.ambient,
                    shadows: true,
                },
            )
            .map_err(render_err)?;
        let texture = randomization
            .texture(seed, renderer.config().plane_texture)
            .map_err(render_err)?;
        renderer.set_plane_texture(texture).map_err(render_err)?;
        Ok(Some(Self {
            renderer,
            tcp_from_camera: template.world_from_camera,
            template,
            lighting,
            randomization,
            seed,
        }))
    }

    /// The camera where the hand is now (pose in the world, intrinsics).
    pub fn camera_at(&self, world: &World) -> Result<Camera, SimError> {
        Ok(Camera {
            world_from_camera: world.world_from_tcp()? * self.tcp_from_camera,
            ..self.template
        })
    }

    /// Renders what the camera sees now; also returns that camera.
    pub fn render(&mut self, world: &World) -> Result<(RenderOutput, Camera), SimError> {
        let camera = self.camera_at(world)?;
        let mut prims = primitives(world)?;
        self.randomization
            .colours(self.seed, &mut prims)
            .map_err(render_err)?;
        let out = self
            .renderer
            .render(&prims, &camera, &self.lighting)
            .map_err(render_err)?;
        Ok((out, camera))
    }
}

/// The world as render primitives: table, robot visuals, objects.
pub fn primitives(world: &World) -> Result<Vec<Primitive>, SimError> {
    let world_from_links = world.arm().world_from_links()?;
    let world_from_objects: Vec<Isometry3<f64>> =
        (0..world.objects().len()).map(|i| world.pose(i)).collect();
    Ok(SceneShapes::new(world).primitives(&world_from_links, &world_from_objects))
}

/// What [`primitives`] needs besides the poses, which does not change
/// during an episode: the table, every link's visuals and every object's
/// shape and colour. Taken once, it turns link and object poses into
/// primitives without the [`World`], e.g. on a logging thread.
#[derive(Debug, Clone)]
pub struct SceneShapes {
    table: [Primitive; 2],
    /// Links sorted by name, with their visuals.
    links: Vec<(String, Vec<Visual>)>,
    /// Shape and colour per object, in [`World::objects`] order.
    objects: Vec<(Geometry, [f32; 3])>,
}

impl SceneShapes {
    /// The shapes of `world`.
    pub fn new(world: &World) -> Self {
        let t = &world.scene().table;
        let table = [
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
        let model = world.arm().model();
        let mut names: Vec<&String> = model.link_names().iter().collect();
        names.sort();
        let links = names
            .into_iter()
            .map(|name| (name.clone(), model.link_visuals(name).to_vec()))
            .collect();
        let objects = world
            .objects()
            .iter()
            .map(|o| (o.geometry, o.rgb))
            .collect();
        Self {
            table,
            links,
            objects,
        }
    }

    /// The primitives with the links at `world_from_links` (from
    /// [`crate::arm::Arm::world_from_links`]; links missing there are left
    /// out) and the objects at `world_from_objects` (in [`World::objects`]
    /// order; extra poses are ignored, missing ones leave objects out).
    pub fn primitives(
        &self,
        world_from_links: &HashMap<String, Isometry3<f64>>,
        world_from_objects: &[Isometry3<f64>],
    ) -> Vec<Primitive> {
        let mut prims = self.table.to_vec();
        for (name, visuals) in &self.links {
            let Some(world_from_link) = world_from_links.get(name) else {
                continue;
            };
            for v in visuals {
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
                    world_from_shape: world_from_link * v.link_from_visual,
                    shape,
                    rgb: [v.rgba[0], v.rgba[1], v.rgba[2]],
                    casts_shadow: true,
                });
            }
        }
        for ((geometry, rgb), &pose) in self.objects.iter().zip(world_from_objects) {
            let (world_from_shape, shape) = match *geometry {
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
                rgb: *rgb,
                casts_shadow: true,
            });
        }
        prims
    }
}

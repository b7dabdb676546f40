//! CPU renderer for the tabletop simulator.
//!
//! Draws [`Primitive`]s (boxes, spheres, cylinders, bowls, planes) seen by a
//! pinhole [`Camera`] in the ROS optical convention into an RGB image and a
//! z-depth image, with Lambert + ambient shading and sun shadows
//! ([`Lighting`]), a procedural table [`Texture`], and seeded
//! [`DomainRandomization`]. Same inputs → bit-identical images.
//!
//! ```
//! use nalgebra::{Isometry3, Point3, Vector3};
//! use vla_render::{Camera, Lighting, Primitive, RenderConfig, Renderer, Shape};
//!
//! let table = Primitive {
//!     world_from_shape: Isometry3::identity(),
//!     shape: Shape::Plane { half_extents_m: [0.5, 0.5] },
//!     rgb: [0.6, 0.5, 0.4],
//!     casts_shadow: false,
//! };
//! let camera = Camera::look_at(
//!     Point3::new(-0.8, 0.0, 0.6), Point3::origin(), Vector3::z(), 0.8, 64, 64,
//! );
//! let mut renderer = Renderer::new(RenderConfig::default()).unwrap();
//! let out = renderer.render(&[table], &camera, &Lighting::default()).unwrap();
//! assert_eq!(out.depth_m.len(), 64 * 64);
//! ```

mod camera;
mod clip;
pub mod demo;
mod error;
mod lighting;
pub mod mesh;
mod randomize;
mod raster;
mod renderer;
mod scene;
mod shadow;
mod texture;

pub use camera::Camera;
pub use error::RenderError;
pub use lighting::Lighting;
pub use randomize::DomainRandomization;
pub use renderer::{RenderConfig, RenderOutput, Renderer, MAX_PRIMITIVES};
pub use scene::{Primitive, Shape};
pub use texture::Texture;

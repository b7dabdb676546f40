#![allow(clippy::unwrap_used)] // helpers shared by the tests below
//! Behaviour of the renderer seen from outside: geometry lands where the
//! camera model says, depth is metric, shadows darken, randomisation is
//! deterministic, bad input is an error.

use nalgebra::{Isometry3, Point3, Translation3, UnitQuaternion, Vector3};
use vla_render::demo::{tabletop_camera, tabletop_primitives};
use vla_render::{
    Camera, DomainRandomization, Lighting, Primitive, RenderConfig, RenderError, RenderOutput,
    Renderer, Shape, Texture,
};

fn at(x: f64, y: f64, z: f64) -> Isometry3<f64> {
    Isometry3::from_parts(Translation3::new(x, y, z), UnitQuaternion::identity())
}

fn table(rgb: [f32; 3]) -> Primitive {
    Primitive {
        world_from_shape: Isometry3::identity(),
        shape: Shape::Plane {
            half_extents_m: [2.0, 2.0],
        },
        rgb,
        casts_shadow: false,
    }
}

fn pixel(out: &RenderOutput, u: f64, v: f64) -> ([u8; 3], f32) {
    let w = out.rgb.width_px() as usize;
    let (x, y) = (u.round() as usize, v.round() as usize);
    let i = y * w + x;
    let d = out.rgb.data();
    ([d[3 * i], d[3 * i + 1], d[3 * i + 2]], out.depth_m[i])
}

fn flat_light() -> Lighting {
    Lighting {
        sun_direction_in_world: -Vector3::z(),
        sun_intensity: 0.0,
        ambient: 1.0,
        shadows: false,
    }
}

fn renderer() -> Renderer {
    Renderer::new(RenderConfig::default()).unwrap()
}

fn top_down_camera(height_m: f64, size_px: u32) -> Camera {
    Camera::look_at(
        Point3::new(0.0, 0.0, height_m),
        Point3::origin(),
        Vector3::x(),
        1.0,
        size_px,
        size_px,
    )
}

#[test]
fn intrinsics_follow_the_field_of_view_and_centre() {
    let cam = Camera::look_at(
        Point3::new(-1.0, 0.0, 0.5),
        Point3::origin(),
        Vector3::z(),
        60f64.to_radians(),
        160,
        120,
    );
    let k = cam.intrinsics_k();
    let f = 60.0 / (30f64.to_radians()).tan();
    assert!((k[0] - f).abs() < 1e-9 && (k[4] - f).abs() < 1e-9);
    assert_eq!([k[2], k[5], k[8]], [79.5, 59.5, 1.0]);
    assert_eq!([k[1], k[3], k[6], k[7]], [0.0; 4]);
    let (u, v, d) = cam.project(&Point3::origin()).unwrap();
    assert!((u - 79.5).abs() < 1e-9 && (v - 59.5).abs() < 1e-9);
    assert!((d - 1.25f64.sqrt()).abs() < 1e-9);
    // Above the target is up in the image (smaller v); +y world is left when looking along +x.
    let (_, v_up, _) = cam.project(&Point3::new(0.0, 0.0, 0.1)).unwrap();
    let (u_left, _, _) = cam.project(&Point3::new(0.0, 0.1, 0.0)).unwrap();
    assert!(v_up < 59.5 && u_left < 79.5);
    // Behind the camera: nothing.
    assert!(cam.project(&Point3::new(-2.0, 0.0, 1.0)).is_none());
}

#[test]
fn cube_appears_at_its_projected_pixel_with_its_colour() {
    let cam = Camera::look_at(
        Point3::new(-1.0, 0.2, 0.6),
        Point3::origin(),
        Vector3::z(),
        0.9,
        96,
        96,
    );
    let centre = Point3::new(0.1, 0.15, 0.05);
    let cube = Primitive {
        world_from_shape: at(centre.x, centre.y, centre.z),
        shape: Shape::Box {
            half_extents_m: [0.05; 3],
        },
        rgb: [0.9, 0.1, 0.1],
        casts_shadow: true,
    };
    let out = renderer()
        .render(&[table([0.5, 0.5, 0.5]), cube], &cam, &flat_light())
        .unwrap();
    let (u, v, dist) = cam.project(&centre).unwrap();
    let (rgb, depth) = pixel(&out, u, v);
    for (got, want) in rgb.iter().zip([0.9f32, 0.1, 0.1]) {
        assert!((f32::from(*got) - want * 255.0).abs() <= 2.0, "{rgb:?}");
    }
    // The visible surface is in front of the centre, by at most the half diagonal.
    assert!(f64::from(depth) < dist && f64::from(depth) > dist - 0.05 * 3f64.sqrt());
    // Away from the cube: the grey table.
    let (u, v, _) = cam.project(&Point3::new(-0.2, -0.2, 0.0)).unwrap();
    for c in pixel(&out, u, v).0 {
        assert!((f32::from(c) - 127.5).abs() <= 1.0, "{c}");
    }
}

#[test]
fn depth_of_a_plane_is_metric_z_depth() {
    // Looking straight down at the table from 1.0 m: every pixel is 1.0 m deep.
    let cam = top_down_camera(1.0, 64);
    let out = renderer()
        .render(&[table([0.5; 3])], &cam, &flat_light())
        .unwrap();
    for d in &out.depth_m {
        assert!((d - 1.0).abs() < 1e-3, "{d}");
    }
    // A wall 2 m in front of a horizontal camera: z-depth (not ray length) is 2 m everywhere.
    let wall = Primitive {
        world_from_shape: Isometry3::from_parts(
            Translation3::new(2.0, 0.0, 0.5),
            UnitQuaternion::from_euler_angles(0.0, -std::f64::consts::FRAC_PI_2, 0.0),
        ),
        shape: Shape::Plane {
            half_extents_m: [5.0, 5.0],
        },
        rgb: [0.5; 3],
        casts_shadow: false,
    };
    let cam = Camera::look_at(
        Point3::new(0.0, 0.0, 0.5),
        Point3::new(1.0, 0.0, 0.5),
        Vector3::z(),
        1.2,
        48,
        32,
    );
    let out = renderer().render(&[wall], &cam, &flat_light()).unwrap();
    for d in &out.depth_m {
        assert!((d - 2.0).abs() < 1e-3, "{d}");
    }
}

#[test]
fn a_plane_crossing_behind_the_camera_is_clipped_not_lost() {
    // A low camera pitched down 30°: the table extends far behind it.
    let height_m = 0.3;
    let pitch = 30f64.to_radians();
    let eye = Point3::new(0.0, 0.0, height_m);
    let cam = Camera::look_at(
        eye,
        eye + Vector3::new(pitch.cos(), 0.0, -pitch.sin()),
        Vector3::z(),
        1.0,
        64,
        64,
    );
    let out = renderer()
        .render(&[table([0.5; 3])], &cam, &flat_light())
        .unwrap();
    let ray_z = |v: f64| {
        // Camera-frame ray through row v, central column; world z component.
        let y = (v - cam.cy_px) / cam.fy_px;
        cam.world_from_camera.rotation * Vector3::new(0.0, y, 1.0)
    };
    for row in [40.0, 50.0, 63.0] {
        let r = ray_z(row);
        assert!(r.z < 0.0);
        let expected = height_m / -r.z; // z-depth = ray parameter for a ray with unit camera z
        let (_, depth) = pixel(&out, 31.5, row);
        assert!(
            (f64::from(depth) - expected).abs() < 1e-3,
            "row {row}: {depth} vs {expected}"
        );
    }
}

#[test]
fn a_bowl_is_open_at_the_top() {
    // Looking straight down into a bowl whose floor is 2.5 cm below its centre.
    let cam = top_down_camera(1.0, 64);
    let bowl = Primitive {
        world_from_shape: Isometry3::identity(),
        shape: Shape::Bowl {
            radius_m: 0.1,
            height_m: 0.05,
        },
        rgb: [0.2, 0.7, 0.3],
        casts_shadow: true,
    };
    let out = renderer()
        .render(&[bowl], &cam, &Lighting::default())
        .unwrap();
    let (rgb, depth) = pixel(&out, 31.5, 31.5);
    assert!((depth - 1.025).abs() < 1e-3, "{depth}");
    assert!(rgb[1] > rgb[0] && rgb[1] > rgb[2], "{rgb:?}");
    // Just inside the rim the wall is seen, higher than the floor.
    let (u, _, _) = cam.project(&Point3::new(0.0, 0.095, 0.0)).unwrap();
    let (_, wall_depth) = pixel(&out, u, 31.5);
    assert!(wall_depth < 1.02 && wall_depth > 0.97, "{wall_depth}");
}

fn brightness(rgb: [u8; 3]) -> f32 {
    rgb.iter().map(|&c| f32::from(c)).sum::<f32>() / 3.0
}

#[test]
fn an_object_casts_a_shadow_on_the_table() {
    // A cube 0.2 m above the table; the sun travels along (+1, 0, -1), so its
    // shadow lies 0.2 m further along +x. The camera looks straight down.
    let cam = top_down_camera(1.5, 96);
    let cube = Primitive {
        world_from_shape: at(0.0, 0.0, 0.2),
        shape: Shape::Box {
            half_extents_m: [0.05; 3],
        },
        rgb: [0.2, 0.2, 0.9],
        casts_shadow: true,
    };
    let lighting = Lighting {
        sun_direction_in_world: Vector3::new(1.0, 0.0, -1.0),
        ..Lighting::default()
    };
    let scene = [table([0.7, 0.7, 0.7]), cube];
    let mut r = renderer();
    let out = r.render(&scene, &cam, &lighting).unwrap();
    let shadow_px = cam.project(&Point3::new(0.25, 0.0, 0.0)).unwrap();
    let lit_px = cam.project(&Point3::new(-0.25, 0.0, 0.0)).unwrap();
    let lit_px2 = cam.project(&Point3::new(0.25, 0.2, 0.0)).unwrap();
    let shadowed = brightness(pixel(&out, shadow_px.0, shadow_px.1).0);
    let lit = brightness(pixel(&out, lit_px.0, lit_px.1).0);
    assert_eq!(lit, brightness(pixel(&out, lit_px2.0, lit_px2.1).0));
    assert!(shadowed < 0.7 * lit, "shadowed {shadowed} lit {lit}");
    // Without shadows the same spot is as bright as the rest of the table.
    let no_shadow = Lighting {
        shadows: false,
        ..lighting
    };
    let out = r.render(&scene, &cam, &no_shadow).unwrap();
    assert_eq!(brightness(pixel(&out, shadow_px.0, shadow_px.1).0), lit);
    // A non-caster leaves no shadow.
    let ghost = [
        scene[0],
        Primitive {
            casts_shadow: false,
            ..scene[1]
        },
    ];
    let out = r.render(&ghost, &cam, &lighting).unwrap();
    assert_eq!(brightness(pixel(&out, shadow_px.0, shadow_px.1).0), lit);
}

#[test]
fn the_lit_top_of_a_cube_is_brighter_than_its_sides() {
    let cam = Camera::look_at(
        Point3::new(-0.6, -0.4, 0.5),
        Point3::origin(),
        Vector3::z(),
        0.8,
        96,
        96,
    );
    let cube = Primitive {
        world_from_shape: at(0.0, 0.0, 0.05),
        shape: Shape::Box {
            half_extents_m: [0.05; 3],
        },
        rgb: [0.8, 0.8, 0.8],
        casts_shadow: true,
    };
    let lighting = Lighting {
        sun_direction_in_world: Vector3::new(0.2, 0.1, -1.0),
        ..Lighting::default()
    };
    let out = renderer().render(&[cube], &cam, &lighting).unwrap();
    let top = cam.project(&Point3::new(0.0, 0.0, 0.1)).unwrap();
    let side = cam.project(&Point3::new(-0.05, 0.0, 0.05)).unwrap();
    assert!(
        brightness(pixel(&out, top.0, top.1).0) > brightness(pixel(&out, side.0, side.1).0) + 20.0
    );
}

#[test]
fn checker_texture_alternates_on_the_table() {
    let mut r = Renderer::new(RenderConfig {
        plane_texture: Texture::Checker {
            square_m: 0.1,
            contrast: 0.5,
        },
        ..RenderConfig::default()
    })
    .unwrap();
    let cam = top_down_camera(1.0, 96);
    let out = r.render(&[table([0.5; 3])], &cam, &flat_light()).unwrap();
    let a = cam.project(&Point3::new(0.05, 0.05, 0.0)).unwrap();
    let b = cam.project(&Point3::new(0.15, 0.05, 0.0)).unwrap();
    let c = cam.project(&Point3::new(0.15, 0.15, 0.0)).unwrap();
    let (ba, bb, bc) = (
        brightness(pixel(&out, a.0, a.1).0),
        brightness(pixel(&out, b.0, b.1).0),
        brightness(pixel(&out, c.0, c.1).0),
    );
    assert!(ba > bb + 20.0 && (ba - bc).abs() < 1.0, "{ba} {bb} {bc}");
}

fn randomised_frame(renderer: &mut Renderer, seed: u64) -> RenderOutput {
    let dr = DomainRandomization::moderate();
    let mut primitives = tabletop_primitives();
    let mut camera = tabletop_camera(64, 64);
    let mut lighting = Lighting::default();
    dr.apply(seed, &mut lighting, &mut primitives, &mut camera, renderer)
        .unwrap();
    renderer.render(&primitives, &camera, &lighting).unwrap()
}

#[test]
fn same_seed_gives_bit_identical_images() {
    let mut a = renderer();
    let mut b = renderer();
    let first = randomised_frame(&mut a, 42);
    // Another seed in between must not leak into the next frame through reused buffers.
    let other = randomised_frame(&mut a, 43);
    let again = randomised_frame(&mut a, 42);
    let fresh = randomised_frame(&mut b, 42);
    assert_eq!(first.rgb, again.rgb);
    assert_eq!(first.rgb, fresh.rgb);
    let bits = |o: &RenderOutput| o.depth_m.iter().map(|d| d.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&first), bits(&again));
    assert_eq!(bits(&first), bits(&fresh));
    assert_ne!(first.rgb, other.rgb);
}

#[test]
fn randomisation_perturbs_within_its_bounds() {
    let dr = DomainRandomization {
        light_jitter: 0.2,
        colour_shade_jitter: 0.1,
        camera_pose_jitter_m: 0.01,
        camera_pose_jitter_rad: 0.02,
        table_texture: false,
    };
    let base_cam = tabletop_camera(64, 64);
    let base_light = Lighting::default();
    let base_prims = tabletop_primitives();
    for seed in 0..20 {
        let cam = dr.camera(seed, &base_cam).unwrap();
        let shift = cam.world_from_camera.translation.vector
            - base_cam.world_from_camera.translation.vector;
        assert!(shift.iter().all(|s| s.abs() <= 0.01) && shift.norm() > 0.0);
        let angle = cam
            .world_from_camera
            .rotation
            .angle_to(&base_cam.world_from_camera.rotation);
        assert!(angle <= 0.02 * 3f64.sqrt() + 1e-12);
        let light = dr.lighting(seed, &base_light).unwrap();
        assert!((light.sun_intensity / base_light.sun_intensity - 1.0).abs() <= 0.2 + 1e-6);
        let mut prims = base_prims.clone();
        dr.colours(seed, &mut prims).unwrap();
        for (p, q) in prims.iter().zip(&base_prims) {
            for (a, b) in p.rgb.iter().zip(q.rgb) {
                assert!((0.0..=1.0).contains(a));
                assert!(*a <= b * 1.1 * 1.05 + 1e-6 && *a >= b * 0.9 * 0.95 - 1e-6);
            }
        }
        assert_eq!(dr.texture(seed, Texture::Plain).unwrap(), Texture::Plain);
    }
    let none = DomainRandomization::default();
    assert_eq!(none.camera(5, &base_cam).unwrap(), base_cam);
    assert_eq!(none.lighting(5, &base_light).unwrap(), base_light);
}

#[test]
fn invalid_input_is_an_error_not_a_panic() {
    let mut r = renderer();
    let scene = tabletop_primitives();
    let lighting = Lighting::default();
    let good = tabletop_camera(32, 32);

    let zero = Camera {
        width_px: 0,
        ..good
    };
    assert!(matches!(
        r.render(&scene, &zero, &lighting),
        Err(RenderError::InvalidCamera(_))
    ));
    let mut nan_pose = good;
    nan_pose.world_from_camera.translation.vector.x = f64::NAN;
    assert!(matches!(
        r.render(&scene, &nan_pose, &lighting),
        Err(RenderError::InvalidCamera(_))
    ));
    let degenerate = Camera::look_at(
        Point3::origin(),
        Point3::origin(),
        Vector3::z(),
        1.0,
        32,
        32,
    );
    assert!(matches!(
        r.render(&scene, &degenerate, &lighting),
        Err(RenderError::InvalidCamera(_))
    ));
    let parallel_up = Camera::look_at(
        Point3::new(0.0, 0.0, 1.0),
        Point3::origin(),
        Vector3::z(),
        1.0,
        32,
        32,
    );
    assert!(matches!(
        r.render(&scene, &parallel_up, &lighting),
        Err(RenderError::InvalidCamera(_))
    ));
    let bad_fov = Camera::look_at(
        Point3::new(1.0, 0.0, 1.0),
        Point3::origin(),
        Vector3::z(),
        0.0,
        32,
        32,
    );
    assert!(matches!(
        r.render(&scene, &bad_fov, &lighting),
        Err(RenderError::InvalidCamera(_))
    ));
    let zero_f = Camera { fx_px: 0.0, ..good };
    assert!(r.render(&scene, &zero_f, &lighting).is_err());

    let mut bad_prims = scene.clone();
    bad_prims[3].shape = Shape::Sphere { radius_m: -1.0 };
    assert!(matches!(
        r.render(&bad_prims, &good, &lighting),
        Err(RenderError::InvalidPrimitive { index: 3, .. })
    ));
    let mut bad_prims = scene.clone();
    bad_prims[1].rgb[0] = f32::NAN;
    assert!(r.render(&bad_prims, &good, &lighting).is_err());

    let dark = Lighting {
        sun_direction_in_world: Vector3::zeros(),
        ..lighting
    };
    assert!(matches!(
        r.render(&scene, &good, &dark),
        Err(RenderError::InvalidLighting(_))
    ));
    let negative = Lighting {
        ambient: -0.1,
        ..lighting
    };
    assert!(r.render(&scene, &good, &negative).is_err());

    assert!(Renderer::new(RenderConfig {
        shadow_map_px: 0,
        ..RenderConfig::default()
    })
    .is_err());
    let bad_dr = DomainRandomization {
        camera_pose_jitter_m: -1.0,
        ..DomainRandomization::default()
    };
    assert!(matches!(
        bad_dr.camera(1, &good),
        Err(RenderError::InvalidRandomization(_))
    ));
    // After all that the renderer still works.
    assert!(r.render(&scene, &good, &lighting).is_ok());
}

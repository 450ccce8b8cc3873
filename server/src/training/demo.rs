//! The demo dataset: shapes drawn by code, so a newcomer can train with no
//! download. Each image is one shape of one of five classes at a random
//! position, size, rotation and colour on a noisy gradient background, with
//! a distracting line across it. Nothing in the colours or the position
//! gives the class away, so an untrained model is at chance level (20 %).

use crate::training::dataset::SPLITS;
use image::{Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;

pub const CLASSES: [&str; 5] = ["001.Circle", "002.Square", "003.Triangle", "004.Cross", "005.Ring"];

#[derive(Clone, Copy, Debug)]
pub struct DemoOptions {
    /// Images per class in train/; valid/ and test/ get a quarter each (at least 4).
    pub per_class: u32,
    /// Side of the square images in pixels.
    pub size: u32,
    pub seed: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions { per_class: 400, size: 64, seed: 7 }
    }
}

impl DemoOptions {
    pub fn count(&self, split: &str) -> u32 {
        if split == "train" {
            self.per_class
        } else {
            (self.per_class / 4).max(4)
        }
    }
}

/// Writes the demo set under `root` (which must not hold one yet) and
/// returns how many images it wrote.
pub fn write(root: &Path, options: DemoOptions) -> std::io::Result<u32> {
    let mut written = 0;
    for (s, split) in SPLITS.iter().enumerate() {
        for (c, class) in CLASSES.iter().enumerate() {
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir)?;
            for i in 0..options.count(split) {
                // One stream per image: the set is the same whatever order it is written in.
                let seed = options.seed ^ ((s as u64) << 56) ^ ((c as u64) << 48) ^ u64::from(i);
                let mut rng = StdRng::seed_from_u64(seed);
                let img = draw(c, options.size, &mut rng);
                img.save_with_format(dir.join(format!("{i:04}.jpg")), image::ImageFormat::Jpeg)
                    .map_err(std::io::Error::other)?;
                written += 1;
            }
        }
    }
    Ok(written)
}

fn random_colour(rng: &mut StdRng) -> [f32; 3] {
    [rng.random_range(0.0..255.0), rng.random_range(0.0..255.0), rng.random_range(0.0..255.0)]
}

fn distance(a: [f32; 3], b: [f32; 3]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt()
}

/// Whether the point (u, v), in the shape's own frame scaled so the shape
/// fits the unit circle, is inside shape `class`.
pub fn inside(class: usize, u: f32, v: f32) -> bool {
    match class {
        0 => u * u + v * v <= 1.0,
        1 => u.abs() <= 0.8 && v.abs() <= 0.8,
        2 => {
            // Equilateral triangle with its corners on the unit circle.
            let (a, b, c) = ((0.0f32, -1.0f32), (0.866f32, 0.5f32), (-0.866f32, 0.5f32));
            let side = |p: (f32, f32), q: (f32, f32)| (q.0 - p.0) * (v - p.1) - (q.1 - p.1) * (u - p.0);
            let (d1, d2, d3) = (side(a, b), side(b, c), side(c, a));
            (d1 >= 0.0 && d2 >= 0.0 && d3 >= 0.0) || (d1 <= 0.0 && d2 <= 0.0 && d3 <= 0.0)
        }
        3 => (u.abs() <= 0.28 && v.abs() <= 1.0) || (v.abs() <= 0.28 && u.abs() <= 1.0),
        4 => {
            let r2 = u * u + v * v;
            (0.36..=1.0).contains(&r2)
        }
        _ => false,
    }
}

fn draw(class: usize, size: u32, rng: &mut StdRng) -> RgbImage {
    let s = size as f32;
    let bg_a = random_colour(rng);
    let bg_b = random_colour(rng);
    let mut fg = random_colour(rng);
    for _ in 0..20 {
        if distance(fg, bg_a) > 110.0 && distance(fg, bg_b) > 110.0 {
            break;
        }
        fg = random_colour(rng);
    }
    let line = random_colour(rng);
    let radius = rng.random_range(0.2..0.42) * s;
    let cx = rng.random_range(radius..s - radius);
    let cy = rng.random_range(radius..s - radius);
    let angle: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let (sin, cos) = angle.sin_cos();
    let gradient_angle: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let (gs, gc) = gradient_angle.sin_cos();
    // A line from one edge to another, drawn under the shape.
    let (lx0, ly0, lx1, ly1) = (rng.random_range(0.0..s), 0.0, rng.random_range(0.0..s), s);
    let line_width = rng.random_range(1.0..2.5f32);
    let noise = rng.random_range(4.0..18.0f32);

    let mut img = RgbImage::new(size, size);
    for y in 0..size {
        for x in 0..size {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let t = (((px / s - 0.5) * gc + (py / s - 0.5) * gs) + 0.75).clamp(0.0, 1.5) / 1.5;
            let mut colour = [0.0f32; 3];
            for k in 0..3 {
                colour[k] = bg_a[k] * (1.0 - t) + bg_b[k] * t;
            }
            let (dx, dy) = (lx1 - lx0, ly1 - ly0);
            let dist_line = ((px - lx0) * dy - (py - ly0) * dx).abs() / (dx * dx + dy * dy).sqrt();
            if dist_line < line_width {
                colour = line;
            }
            // 2×2 supersampling smooths the shape's edge.
            let mut cover = 0.0;
            for (ox, oy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                let (qx, qy) = (x as f32 + ox - cx, y as f32 + oy - cy);
                let (u, v) = ((qx * cos + qy * sin) / radius, (-qx * sin + qy * cos) / radius);
                if inside(class, u, v) {
                    cover += 0.25;
                }
            }
            let mut out = [0u8; 3];
            for k in 0..3 {
                let jitter = rng.random_range(-noise..noise);
                out[k] = (colour[k] * (1.0 - cover) + fg[k] * cover + jitter).clamp(0.0, 255.0) as u8;
            }
            img.put_pixel(x, y, Rgb(out));
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_told_apart_by_their_outline() {
        // The centre is inside every filled shape but not the ring.
        assert!(inside(0, 0.0, 0.0) && inside(1, 0.0, 0.0) && inside(3, 0.0, 0.0));
        assert!(!inside(4, 0.0, 0.0));
        assert!(inside(4, 0.9, 0.0));
        // A square's corner is outside the circle; a cross's corner outside both.
        assert!(inside(1, 0.75, 0.75) && !inside(0, 0.75, 0.75) && !inside(3, 0.75, 0.75));
        assert!(inside(2, 0.0, 0.3) && !inside(2, 0.8, -0.8));
    }

    #[test]
    fn writes_every_split_and_class_reproducibly() {
        let dir = tempfile::tempdir().unwrap();
        let options = DemoOptions { per_class: 8, size: 32, seed: 1 };
        assert_eq!(write(dir.path(), options).unwrap(), 5 * (8 + 4 + 4));
        let ds = crate::training::dataset::check(dir.path(), 2);
        assert!(ds.report.can_train(), "{:?}", ds.report.problems);
        assert!(ds.report.skipped.is_empty(), "{:?}", ds.report.skipped);
        assert_eq!(ds.report.classes.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["Circle", "Square", "Triangle", "Cross", "Ring"]);

        let again = tempfile::tempdir().unwrap();
        write(again.path(), options).unwrap();
        assert_eq!(crate::training::dataset::check(again.path(), 1).report.digest, ds.report.digest);
    }
}

//! The input pipeline: decode with the `image` crate, crop/flip/resize and
//! normalise in one pass straight into the batch buffer, on a pool of
//! threads that stays a few batches ahead of the model. Memory is bounded by
//! the prefetch queue: the dataset is never held in RAM.
//!
//! Why this beats torchvision's ImageFolder + DataLoader on the same
//! libtorch: PIL crops, resizes into a new image, ToTensor converts it to a
//! float tensor and Normalize makes another; here each output pixel is
//! computed once from the decoded bytes, and decoding overlaps the
//! model's forward and backward passes instead of waiting for them.

use crate::training::dataset::Sample;
use image::RgbImage;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
pub use app::training::spec::Augmentation;

/// RandomResizedCrop's aspect ratios (torchvision's default). The area range
/// is the job's choice ([`Augmentation`]); for photos 0.35–1: torchvision's
/// default lower bound (0.08) can crop the object out of small,
/// object-centred images such as the demo set.
pub const CROP_RATIO: (f32, f32) = (3.0 / 4.0, 4.0 / 3.0);

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Transform {
    /// The job's augmentation: RandomResizedCrop and/or a random horizontal flip.
    Train(Augmentation),
    /// Resize the whole image to the square size.
    Eval,
}

/// A region of the source image, in pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crop {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

/// torchvision's RandomResizedCrop region: ten tries at a random area and
/// aspect ratio, then a centre crop clamped to the allowed ratios.
pub fn random_resized_crop(width: u32, height: u32, scale: (f32, f32), rng: &mut impl Rng) -> Crop {
    let (w, h) = (width as f32, height as f32);
    let area = w * h;
    let (log_lo, log_hi) = (CROP_RATIO.0.ln(), CROP_RATIO.1.ln());
    for _ in 0..10 {
        let target = area * rng.random_range(scale.0..=scale.1);
        let ratio = rng.random_range(log_lo..=log_hi).exp();
        let cw = (target * ratio).sqrt().round();
        let ch = (target / ratio).sqrt().round();
        if cw >= 1.0 && ch >= 1.0 && cw <= w && ch <= h {
            let x = rng.random_range(0.0..=(w - cw)).floor();
            let y = rng.random_range(0.0..=(h - ch)).floor();
            return Crop { x, y, w: cw, h: ch };
        }
    }
    let ratio = w / h;
    let (cw, ch) = if ratio < CROP_RATIO.0 {
        (w, (w / CROP_RATIO.0).round())
    } else if ratio > CROP_RATIO.1 {
        ((h * CROP_RATIO.1).round(), h)
    } else {
        (w, h)
    };
    Crop { x: ((w - cw) / 2.0).floor(), y: ((h - ch) / 2.0).floor(), w: cw, h: ch }
}

/// For each output pixel along one axis, the source pixels and weights that
/// make it: bilinear samples, k per output pixel when shrinking by k or more
/// (an area average, so large images don't alias).
fn taps(start: f32, len: f32, out: usize, src_len: u32) -> Vec<Vec<(u32, f32)>> {
    let scale = len / out as f32;
    let k = (scale.ceil() as usize).clamp(1, 4);
    let last = src_len.saturating_sub(1) as f32;
    (0..out)
        .map(|o| {
            let mut taps: Vec<(u32, f32)> = Vec::with_capacity(2 * k);
            for j in 0..k {
                let pos = (start + (o as f32 + (j as f32 + 0.5) / k as f32) * scale - 0.5).clamp(0.0, last);
                let i0 = pos.floor();
                let frac = pos - i0;
                for (i, w) in [(i0 as u32, 1.0 - frac), ((i0 as u32 + 1).min(last as u32), frac)] {
                    if w <= 0.0 {
                        continue;
                    }
                    match taps.iter_mut().find(|t| t.0 == i) {
                        Some(t) => t.1 += w / k as f32,
                        None => taps.push((i, w / k as f32)),
                    }
                }
            }
            taps
        })
        .collect()
}

/// Resamples `crop` of `img` to `size`×`size`, optionally mirrored, and
/// writes it normalised, channels first, into `out` (3·size·size floats).
pub fn resample_into(img: &RgbImage, crop: Crop, flip: bool, size: usize, out: &mut [f32]) {
    let (width, height) = img.dimensions();
    let mut tx = taps(crop.x, crop.w, size, width);
    if flip {
        tx.reverse();
    }
    let ty = taps(crop.y, crop.h, size, height);
    let row_lo = ty.iter().flatten().map(|t| t.0).min().unwrap_or(0);
    let row_hi = ty.iter().flatten().map(|t| t.0).max().unwrap_or(0);
    let raw = img.as_raw();
    let stride = width as usize * 3;

    // Horizontal pass over the rows the crop touches.
    let rows = (row_hi - row_lo + 1) as usize;
    let mut horizontal = vec![0f32; rows * size * 3];
    for r in 0..rows {
        let src = &raw[(row_lo as usize + r) * stride..][..stride];
        let dst = &mut horizontal[r * size * 3..][..size * 3];
        for (ox, taps) in tx.iter().enumerate() {
            let mut acc = [0f32; 3];
            for &(ix, w) in taps {
                let p = &src[ix as usize * 3..ix as usize * 3 + 3];
                acc[0] += w * f32::from(p[0]);
                acc[1] += w * f32::from(p[1]);
                acc[2] += w * f32::from(p[2]);
            }
            dst[ox * 3..ox * 3 + 3].copy_from_slice(&acc);
        }
    }
    // Vertical pass, then (v/255 − mean)/std in CHW order.
    let plane = size * size;
    let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * IMAGENET_STD[c]));
    let shift: [f32; 3] = std::array::from_fn(|c| -IMAGENET_MEAN[c] / IMAGENET_STD[c]);
    for (oy, taps) in ty.iter().enumerate() {
        for ox in 0..size {
            let mut acc = [0f32; 3];
            for &(iy, w) in taps {
                let h = &horizontal[((iy - row_lo) as usize * size + ox) * 3..][..3];
                acc[0] += w * h[0];
                acc[1] += w * h[1];
                acc[2] += w * h[2];
            }
            for c in 0..3 {
                out[c * plane + oy * size + ox] = acc[c] * scale[c] + shift[c];
            }
        }
    }
}

/// Decodes one file to RGB: a regular file only (a FIFO swapped in after
/// the dataset check cannot hang the loader), bounded as the check bounds it.
pub fn decode(path: &std::path::Path) -> Result<RgbImage, String> {
    let bytes = crate::images::read_regular_file(path, crate::training::dataset::MAX_IMAGE_FILE, &[])?;
    crate::images::decode_bytes(&bytes).map(|(rgb, _)| rgb)
}

/// Transforms one decoded image into `out`. `rng` draws the augmentation.
pub fn transform_into(img: &RgbImage, transform: Transform, size: usize, rng: &mut impl Rng, out: &mut [f32]) {
    let (w, h) = img.dimensions();
    match transform {
        Transform::Train(augmentation) => {
            let crop = match augmentation.crop {
                Some(scale) => random_resized_crop(w, h, scale, rng),
                None => Crop { x: 0.0, y: 0.0, w: w as f32, h: h as f32 },
            };
            let flip = augmentation.flip && rng.random_bool(0.5);
            resample_into(img, crop, flip, size, out);
        }
        Transform::Eval => {
            resample_into(img, Crop { x: 0.0, y: 0.0, w: w as f32, h: h as f32 }, false, size, out);
        }
    }
}

/// One batch, ready for `Tensor::from_slice`: images N×3×S×S, labels N.
pub struct Batch {
    pub images: Vec<f32>,
    pub labels: Vec<i64>,
    /// Files that failed to decode now although the check passed them.
    pub failed: Vec<(PathBuf, String)>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

#[derive(Clone, Copy, Debug)]
pub struct LoaderConfig {
    pub size: usize,
    pub batch_size: usize,
    pub threads: usize,
    /// Batches decoded ahead of the model, at most.
    pub prefetch: usize,
}

/// The batches of one pass over `samples`, in `order`, produced by
/// `config.threads` threads. Dropping it stops the threads.
pub struct EpochLoader {
    rx: Option<Receiver<Batch>>,
    workers: Vec<JoinHandle<()>>,
    pub batches: usize,
}

impl EpochLoader {
    pub fn start(samples: Arc<Vec<Sample>>, order: Vec<usize>, transform: Transform, config: LoaderConfig, seed: u64) -> Self {
        let batch_size = config.batch_size.max(1);
        let batches = order.len().div_ceil(batch_size);
        let order = Arc::new(order);
        let next = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = sync_channel::<Batch>(config.prefetch.max(1));
        let workers = (0..config.threads.max(1))
            .map(|_| {
                let (samples, order, next, tx) = (samples.clone(), order.clone(), next.clone(), tx.clone());
                let span = tracing::Span::current();
                std::thread::spawn(move || span.in_scope(|| loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    if b >= batches {
                        break;
                    }
                    let positions = &order[b * batch_size..((b + 1) * batch_size).min(order.len())];
                    let batch = make_batch(&samples, positions, b * batch_size, transform, config.size, seed);
                    if tx.send(batch).is_err() {
                        break; // the consumer is gone (cancelled or finished early)
                    }
                }))
            })
            .collect();
        EpochLoader { rx: Some(rx), workers, batches }
    }
}

fn make_batch(samples: &[Sample], positions: &[usize], first: usize, transform: Transform, size: usize, seed: u64) -> Batch {
    let per_image = 3 * size * size;
    let mut images = vec![0f32; positions.len() * per_image];
    let mut labels = Vec::with_capacity(positions.len());
    let mut failed = Vec::new();
    for (k, &i) in positions.iter().enumerate() {
        let sample = &samples[i];
        // One random stream per (epoch seed, position): augmentations do not
        // depend on which thread took the batch.
        let mut rng = StdRng::seed_from_u64(seed ^ ((first + k) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        match decode(&sample.path) {
            Ok(img) => {
                let n = labels.len();
                transform_into(&img, transform, size, &mut rng, &mut images[n * per_image..(n + 1) * per_image]);
                labels.push(sample.label);
            }
            Err(e) => failed.push((sample.path.clone(), e)),
        }
    }
    images.truncate(labels.len() * per_image);
    Batch { images, labels, failed }
}

impl Iterator for EpochLoader {
    type Item = Batch;
    fn next(&mut self) -> Option<Batch> {
        self.rx.as_ref()?.recv().ok()
    }
}

impl Drop for EpochLoader {
    fn drop(&mut self) {
        // Closing the queue first makes blocked workers stop, then we wait.
        self.rx.take();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(w: u32, h: u32, rgb: [u8; 3]) -> RgbImage {
        RgbImage::from_pixel(w, h, image::Rgb(rgb))
    }

    #[test]
    fn crops_stay_inside_the_image_and_keep_their_ratio() {
        let mut rng = StdRng::seed_from_u64(3);
        for (w, h) in [(64, 64), (500, 375), (40, 300), (1, 1)] {
            for _ in 0..200 {
                let c = random_resized_crop(w, h, Augmentation::PHOTOS.crop.unwrap(), &mut rng);
                assert!(c.x >= 0.0 && c.y >= 0.0 && c.x + c.w <= w as f32 && c.y + c.h <= h as f32, "{c:?} in {w}x{h}");
                assert!(c.w >= 1.0 && c.h >= 1.0);
            }
        }
    }

    #[test]
    fn the_jobs_augmentation_decides_crops_and_mirrors() {
        // Left half white, right half black: a mirror or a crop shows.
        let img = RgbImage::from_fn(40, 30, |x, _| if x < 20 { image::Rgb([255, 255, 255]) } else { image::Rgb([0, 0, 0]) });
        let size = 8;
        let run = |transform: Transform, seed: u64| {
            let mut out = vec![0f32; 3 * size * size];
            transform_into(&img, transform, size, &mut StdRng::seed_from_u64(seed), &mut out);
            out
        };
        let whole = run(Transform::Eval, 0);
        // None: every epoch sees the whole image, never mirrored.
        assert!((0..50).all(|seed| run(Transform::Train(Augmentation::NONE), seed) == whole));
        // Flip only: the whole image or its mirror, both seen.
        let flip_only = Augmentation { flip: true, crop: None };
        let outs: Vec<Vec<f32>> = (0..50).map(|seed| run(Transform::Train(flip_only), seed)).collect();
        let mirrored = outs.iter().filter(|o| **o != whole).count();
        assert!(mirrored > 10 && mirrored < 40, "{mirrored} of 50 mirrored");
        let left_is_white = |o: &[f32]| o[0] > 0.0;
        assert!(outs.iter().all(|o| *o == whole || !left_is_white(o)));
        // Crops without flips: the left column stays white (never mirrored), areas within range.
        let mild = Augmentation { flip: false, crop: Some((0.7, 1.0)) };
        assert!((0..50).all(|seed| left_is_white(&run(Transform::Train(mild), seed))));
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..200 {
            let c = random_resized_crop(40, 30, (0.7, 1.0), &mut rng);
            assert!(c.w * c.h >= 0.69 * 1200.0, "{c:?}");
        }
    }

    #[test]
    fn a_flat_colour_normalises_to_imagenet_values() {
        let img = solid(37, 53, [255, 128, 0]);
        let mut out = vec![0f32; 3 * 8 * 8];
        resample_into(&img, Crop { x: 3.0, y: 5.0, w: 30.0, h: 40.0 }, true, 8, &mut out);
        let expect = |v: f32, c: usize| (v / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        for (c, v) in [(0, 255.0), (1, 128.0), (2, 0.0)] {
            for x in &out[c * 64..(c + 1) * 64] {
                assert!((x - expect(v, c)).abs() < 1e-4, "channel {c}: {x}");
            }
        }
    }

    #[test]
    fn resizing_keeps_left_and_right_and_flipping_swaps_them() {
        // Left half black, right half white.
        let img = RgbImage::from_fn(100, 50, |x, _| if x < 50 { image::Rgb([0, 0, 0]) } else { image::Rgb([255, 255, 255]) });
        let full = Crop { x: 0.0, y: 0.0, w: 100.0, h: 50.0 };
        let mut out = vec![0f32; 3 * 4 * 4];
        resample_into(&img, full, false, 4, &mut out);
        assert!(out[0] < 0.0 && out[3] > 0.0, "{:?}", &out[..4]);
        resample_into(&img, full, true, 4, &mut out);
        assert!(out[0] > 0.0 && out[3] < 0.0, "{:?}", &out[..4]);
    }

    #[test]
    fn shrinking_averages_instead_of_aliasing() {
        // One-pixel stripes: a plain bilinear sample would land on one colour.
        let img = RgbImage::from_fn(64, 64, |x, _| if x % 2 == 0 { image::Rgb([0, 0, 0]) } else { image::Rgb([255, 255, 255]) });
        let mut out = vec![0f32; 3 * 8 * 8];
        resample_into(&img, Crop { x: 0.0, y: 0.0, w: 64.0, h: 64.0 }, false, 8, &mut out);
        let grey = (127.5 / 255.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0];
        assert!(out[..64].iter().all(|v| (v - grey).abs() < 0.1), "{:?}", &out[..8]);
    }

    #[test]
    fn the_loader_yields_every_sample_once_with_bounded_threads() {
        let dir = tempfile::tempdir().unwrap();
        let mut samples = Vec::new();
        for i in 0..10 {
            let path = dir.path().join(format!("{i}.png"));
            solid(20, 20, [i as u8 * 20, 0, 0]).save(&path).unwrap();
            samples.push(Sample { path, label: i });
        }
        samples.push(Sample { path: dir.path().join("gone.png"), label: 99 });
        let config = LoaderConfig { size: 8, batch_size: 4, threads: 3, prefetch: 2 };
        let loader = EpochLoader::start(Arc::new(samples), (0..11).rev().collect(), Transform::Train(Augmentation::PHOTOS), config, 1);
        assert_eq!(loader.batches, 3);
        let batches: Vec<Batch> = loader.collect();
        let mut labels: Vec<i64> = batches.iter().flat_map(|b| b.labels.clone()).collect();
        labels.sort();
        assert_eq!(labels, (0..10).collect::<Vec<_>>());
        assert!(batches.iter().all(|b| b.images.len() == b.len() * 3 * 64));
        assert_eq!(batches.iter().map(|b| b.failed.len()).sum::<usize>(), 1);
    }

    #[test]
    fn dropping_the_loader_early_stops_its_threads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        solid(8, 8, [1, 2, 3]).save(&path).unwrap();
        let samples = Arc::new(vec![Sample { path, label: 0 }; 64]);
        let config = LoaderConfig { size: 8, batch_size: 1, threads: 2, prefetch: 1 };
        let mut loader = EpochLoader::start(samples, (0..64).collect(), Transform::Eval, config, 0);
        assert!(loader.next().is_some());
        drop(loader); // must not hang
    }
}

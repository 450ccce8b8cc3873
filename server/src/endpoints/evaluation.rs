//! Evaluation (the page calls it the test bench; not `bench.rs`, which
//! measures the server): a labelled folder (the dataset layout) through an
//! endpoint, summed up as accuracy, a confusion matrix, a latency histogram
//! and the images it got wrong.

use app::endpoints::{TestBenchReport, WrongImage};
use app::ApiError;
use base64::Engine;
use std::path::{Path, PathBuf};

/// Class folders and their images, in class order.
#[derive(Debug)]
pub struct LabelledFolder {
    pub root: PathBuf,
    pub classes: Vec<String>,
    /// (path, class index)
    pub images: Vec<(PathBuf, usize)>,
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
}

fn sorted_entries(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    Ok(entries)
}

/// Reads `folder`: a dataset root (its `test/` split is used) or a folder of
/// class folders. Takes at most `limit` images, alternating between classes
/// so a limit never leaves a class out.
pub fn scan(folder: &Path, limit: usize) -> Result<LabelledFolder, ApiError> {
    let root = if folder.join("test").is_dir() { folder.join("test") } else { folder.to_path_buf() };
    let dirs: Vec<PathBuf> = sorted_entries(&root)
        .map_err(|e| ApiError::Invalid(format!("cannot read {}: {e}", root.display())))?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect();
    if dirs.is_empty() {
        return Err(ApiError::Invalid(format!(
            "{} has no class folders: point at a dataset (train/valid/test) or at a folder with one folder of images per class",
            root.display()
        )));
    }
    let mut per_class: Vec<Vec<PathBuf>> = dirs
        .iter()
        // Regular files only (not following links here: the read checks them).
        .map(|d| sorted_entries(d).unwrap_or_default().into_iter().filter(|p| is_image(p) && !p.is_dir()).collect())
        .collect();
    let mut images = Vec::new();
    let mut round = 0;
    while images.len() < limit && per_class.iter().any(|c| c.len() > round) {
        for (class, files) in per_class.iter_mut().enumerate() {
            if let Some(p) = files.get(round) {
                if images.len() < limit {
                    images.push((p.clone(), class));
                }
            }
        }
        round += 1;
    }
    if images.is_empty() {
        return Err(ApiError::Invalid(format!("{} has no JPEG or PNG images in its class folders", root.display())));
    }
    let classes = dirs.iter().map(|d| d.file_name().unwrap_or_default().to_string_lossy().to_string()).collect();
    Ok(LabelledFolder { root, classes, images })
}

/// One image's result, or the error in words.
pub struct Judged {
    pub path: PathBuf,
    /// The folder's class index.
    pub truth: usize,
    pub result: Result<Prediction, String>,
}

pub struct Prediction {
    /// The predicted class in the folder's numbering; `None` when the model
    /// answered a class the folder does not have.
    pub folder_class: Option<usize>,
    /// The predicted class as the model names it.
    pub label: String,
    pub probability: f64,
    pub ms: f64,
}

/// Upper bounds of the latency histogram's bins, in ms.
pub const LATENCY_BINS_MS: [f64; 12] = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, f64::INFINITY];

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Sums up the judged images.
pub fn summarize(folder: &LabelledFolder, judged: &[Judged], seconds: f64) -> TestBenchReport {
    let n = folder.classes.len();
    let mut confusion = vec![vec![0u32; n]; n];
    let mut latencies = Vec::new();
    let mut failed = Vec::new();
    let mut correct = 0;
    let mut wrong = Vec::new();
    for j in judged {
        match &j.result {
            Ok(p) => {
                latencies.push(p.ms);
                if let Some(cell) = p.folder_class.and_then(|c| confusion.get_mut(j.truth)?.get_mut(c)) {
                    *cell += 1;
                }
                if p.folder_class == Some(j.truth) {
                    correct += 1;
                } else {
                    wrong.push(WrongImage {
                        path: j.path.display().to_string(),
                        truth: app::training::class_display_name(&folder.classes[j.truth]),
                        predicted: p.label.clone(),
                        probability: p.probability,
                        thumbnail: String::new(),
                    });
                }
            }
            Err(e) => failed.push((j.path.display().to_string(), e.clone())),
        }
    }
    latencies.sort_by(f64::total_cmp);
    let mut bins: Vec<(f64, u32)> = LATENCY_BINS_MS.iter().map(|&b| (b, 0)).collect();
    for ms in &latencies {
        if let Some(bin) = bins.iter_mut().find(|(upper, _)| ms <= upper) {
            bin.1 += 1;
        }
    }
    TestBenchReport {
        folder: folder.root.display().to_string(),
        // Named as the predictions are named (`003.digit_2` → `digit 2`).
        classes: folder.classes.iter().map(|c| app::training::class_display_name(c)).collect(),
        class_folders: folder.classes.clone(),
        wrong_total: wrong.len() as u32,
        images: latencies.len() as u32,
        correct,
        failed,
        confusion,
        latency_bins_ms: bins.into_iter().map(|(b, c)| (if b.is_finite() { b } else { -1.0 }, c)).collect(),
        latency_p50_ms: percentile(&latencies, 0.50),
        latency_p99_ms: percentile(&latencies, 0.99),
        wrong,
        seconds,
    }
}

/// A 96-pixel PNG of the image as a data: URL, for the wrong-answer gallery:
/// only of a regular file within `roots`, bounded like an invocation.
pub fn thumbnail(path: &Path, roots: &[PathBuf]) -> String {
    let Ok(bytes) = crate::images::read_regular_file(path, crate::body::MAX_PAYLOAD as u64, roots) else { return String::new() };
    let Ok((image, _)) = crate::images::decode_bytes(&bytes) else { return String::new() };
    let small = image::DynamicImage::ImageRgb8(image).thumbnail(96, 96);
    let mut png = std::io::Cursor::new(Vec::new());
    if small.write_to(&mut png, image::ImageFormat::Png).is_err() {
        return String::new();
    }
    format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder_with(classes: &[(&str, usize)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (class, count) in classes {
            std::fs::create_dir_all(dir.path().join("test").join(class)).unwrap();
            for i in 0..*count {
                std::fs::write(dir.path().join("test").join(class).join(format!("{i}.jpg")), b"x").unwrap();
            }
        }
        std::fs::write(dir.path().join("test").join("notes.txt"), b"ignored").unwrap();
        dir
    }

    #[test]
    fn scan_uses_the_test_split_and_alternates_classes_under_a_limit() {
        let dir = folder_with(&[("cat", 5), ("dog", 1), ("fox", 3)]);
        let f = scan(dir.path(), 4).unwrap();
        assert_eq!(f.classes, ["cat", "dog", "fox"]);
        let labels: Vec<usize> = f.images.iter().map(|i| i.1).collect();
        assert_eq!(labels, [0, 1, 2, 0]);
        assert_eq!(scan(dir.path(), 100).unwrap().images.len(), 9);
        assert!(scan(&dir.path().join("test/cat"), 10).unwrap_err().message().contains("no class folders"));
    }

    #[test]
    fn summary_counts_confusion_latency_and_wrong_images() {
        let dir = folder_with(&[("cat", 2), ("dog", 2)]);
        let f = scan(dir.path(), 10).unwrap();
        let said = |class: usize, probability: f64, ms: f64| {
            Ok(Prediction { folder_class: Some(class), label: ["cat", "dog"][class].to_string(), probability, ms })
        };
        let judged = vec![
            Judged { path: "a".into(), truth: 0, result: said(0, 0.9, 3.0) },
            Judged { path: "b".into(), truth: 0, result: said(1, 0.6, 12.0) },
            Judged { path: "c".into(), truth: 1, result: said(1, 0.8, 4.0) },
            Judged { path: "d".into(), truth: 1, result: Err("422: cannot be decoded".into()) },
        ];
        let r = summarize(&f, &judged, 1.0);
        assert_eq!((r.images, r.correct), (3, 2));
        assert!((r.accuracy() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(r.confusion, vec![vec![1, 1], vec![0, 1]]);
        assert_eq!(r.failed.len(), 1);
        assert_eq!(r.wrong.len(), 1);
        assert_eq!((r.wrong[0].truth.as_str(), r.wrong[0].predicted.as_str()), ("cat", "dog"));
        assert_eq!(r.latency_p50_ms, 4.0);
        assert_eq!(r.latency_p99_ms, 12.0);
        let counted: u32 = r.latency_bins_ms.iter().map(|b| b.1).sum();
        assert_eq!(counted, 3);
        assert_eq!(r.latency_bins_ms[2], (5.0, 2));
        assert_eq!(r.wrong_total, 1);
    }

    /// The report names classes as the predictions do, and says how many
    /// images it got wrong when it shows only the first of them.
    #[test]
    fn classes_read_as_the_model_names_them_and_the_wrong_count_is_whole() {
        let dir = folder_with(&[("001.digit_0", 2), ("002.digit_1", 2)]);
        let f = scan(dir.path(), 10).unwrap();
        let judged: Vec<Judged> = (0..4)
            .map(|i| Judged {
                path: format!("{i}.jpg").into(),
                truth: i % 2,
                result: Ok(Prediction { folder_class: Some(1 - i % 2), label: ["digit 0", "digit 1"][1 - i % 2].to_string(), probability: 0.7, ms: 2.0 }),
            })
            .collect();
        let mut r = summarize(&f, &judged, 1.0);
        assert_eq!(r.classes, ["digit 0", "digit 1"]);
        assert_eq!(r.class_folders, ["001.digit_0", "002.digit_1"]);
        assert_eq!((r.wrong[0].truth.as_str(), r.wrong[0].predicted.as_str()), ("digit 0", "digit 1"));
        r.wrong.truncate(1);
        assert_eq!((r.wrong.len(), r.wrong_total), (1, 4));
    }
}

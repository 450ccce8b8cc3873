//! Datasets in the seeds' layout: `train/`, `valid/`, `test/`, one folder
//! per class, JPEG or PNG files. The check decodes every file (in parallel)
//! before any training starts, so a broken file is reported with its reason
//! instead of failing an epoch halfway.

use app::training::{class_display_name, ClassInfo, DatasetReport, SkippedFile, SplitCount};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const SPLITS: [&str; 3] = ["train", "valid", "test"];

/// One usable image: its file and its class index.
#[derive(Clone, Debug)]
pub struct Sample {
    pub path: PathBuf,
    pub label: i64,
}

/// A checked dataset: the report, and the usable samples of each split.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub report: DatasetReport,
    pub train: Vec<Sample>,
    pub valid: Vec<Sample>,
    pub test: Vec<Sample>,
}

impl Dataset {
    pub fn class_folders(&self) -> Vec<String> {
        self.report.classes.iter().map(|c| c.folder.clone()).collect()
    }
}

/// What checking one file found.
#[derive(Debug, Clone, PartialEq)]
enum FileVerdict {
    /// `real` is the file read: the link's target when it was a link inside
    /// the dataset, so training reads the same file without following links.
    Ok { sha256: [u8; 32], real: PathBuf },
    Skip(String),
}

/// The largest image file a dataset may hold.
pub const MAX_IMAGE_FILE: u64 = 128 * 1024 * 1024;

/// Reads and fully decodes one file: a regular file (never a FIFO or a
/// device, which could block the check or read forever), at most
/// MAX_IMAGE_FILE, a symlink only if it stays inside the dataset, decoded
/// within the bounds of [`crate::images`] (truncated JPEGs, which often
/// decode "fine" with a grey bottom, are refused there too).
fn check_file(path: &Path, root: &Path) -> FileVerdict {
    let bytes = match crate::images::read_regular_file(path, MAX_IMAGE_FILE, &[root.to_path_buf()]) {
        Ok(b) => b,
        Err(e) => return FileVerdict::Skip(e),
    };
    if bytes.is_empty() {
        return FileVerdict::Skip("empty file".into());
    }
    match image::guess_format(&bytes) {
        Ok(image::ImageFormat::Jpeg | image::ImageFormat::Png) => {}
        Ok(other) => return FileVerdict::Skip(format!("not a JPEG or PNG ({other:?})")),
        Err(_) => return FileVerdict::Skip("not an image".into()),
    }
    if image::guess_format(&bytes).ok() == Some(image::ImageFormat::Jpeg) && !jpeg_is_complete(&bytes) {
        return FileVerdict::Skip("truncated (the JPEG has no end-of-image marker)".into());
    }
    match crate::images::decode_bytes(&bytes) {
        Ok(_) => FileVerdict::Ok { sha256: Sha256::digest(&bytes).into(), real: path.canonicalize().unwrap_or_else(|_| path.to_path_buf()) },
        Err(e) => FileVerdict::Skip(e),
    }
}

/// A JPEG ends with FF D9, possibly followed by padding some writers add.
pub use crate::images::jpeg_is_complete;

fn sorted_entries(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    Ok(entries)
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}

fn is_hidden(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'))
}

/// Checks the dataset at `root` with `threads` decoding threads. Always
/// returns a report; `report.problems` says whether it can train.
pub fn check(root: &Path, threads: usize) -> Dataset {
    let started = Instant::now();
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut skipped = Vec::new();
    let empty = |report| Dataset { report, train: vec![], valid: vec![], test: vec![] };

    if !root.is_dir() {
        return empty(DatasetReport {
            root: root.display().to_string(),
            classes: vec![],
            splits: vec![],
            skipped: vec![],
            problems: vec![format!("{} is not a folder", root.display())],
            warnings: vec![],
            digest: String::new(),
            seconds: started.elapsed().as_secs_f64(),
        });
    }

    // split → class folder → files
    let mut layout: BTreeMap<&str, BTreeMap<String, Vec<PathBuf>>> = BTreeMap::new();
    for split in SPLITS {
        let dir = root.join(split);
        if !dir.is_dir() {
            problems.push(format!("there is no {split}/ folder"));
            continue;
        }
        let classes = layout.entry(split).or_default();
        for entry in sorted_entries(&dir).unwrap_or_default() {
            if is_hidden(&entry) {
                continue;
            }
            if entry.is_dir() {
                let name = entry.file_name().unwrap_or_default().to_string_lossy().to_string();
                let files: Vec<PathBuf> = sorted_entries(&entry)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|f| !is_hidden(f))
                    .filter(|f| {
                        if f.is_dir() {
                            skipped.push(SkippedFile { path: relative(root, f), reason: "a folder inside a class folder".into() });
                            false
                        } else {
                            true
                        }
                    })
                    .collect();
                classes.insert(name, files);
            } else {
                skipped.push(SkippedFile {
                    path: relative(root, &entry),
                    reason: format!("not inside a class folder of {split}/"),
                });
            }
        }
    }

    // Decode every file once, spread over the threads.
    let all: Vec<PathBuf> = layout.values().flat_map(|c| c.values().flatten().cloned()).collect();
    let verdicts = check_all(&all, threads.max(1), root);

    // Classes are the train folders with at least one good image.
    let good = |path: &PathBuf| matches!(verdicts.get(path), Some(FileVerdict::Ok { .. }));
    let train_classes: Vec<String> = layout
        .get("train")
        .map(|c| c.iter().filter(|(_, files)| files.iter().any(good)).map(|(name, _)| name.clone()).collect())
        .unwrap_or_default();
    let index: BTreeMap<&str, i64> = train_classes.iter().enumerate().map(|(i, c)| (c.as_str(), i as i64)).collect();

    let mut splits = Vec::new();
    let mut samples: BTreeMap<&str, Vec<Sample>> = BTreeMap::new();
    let mut hasher = Sha256::new();
    for split in SPLITS {
        let Some(classes) = layout.get(split) else { continue };
        let mut per_class = vec![0u32; train_classes.len()];
        let list = samples.entry(split).or_default();
        for (class, files) in classes {
            let label = index.get(class.as_str()).copied();
            for file in files {
                match (verdicts.get(file), label) {
                    (Some(FileVerdict::Ok { sha256, real }), Some(label)) => {
                        per_class[label as usize] += 1;
                        hasher.update(relative(root, file).as_bytes());
                        hasher.update([0]);
                        hasher.update(sha256);
                        list.push(Sample { path: real.clone(), label });
                    }
                    (Some(FileVerdict::Skip(reason)), _) => {
                        skipped.push(SkippedFile { path: relative(root, file), reason: reason.clone() })
                    }
                    (Some(FileVerdict::Ok { .. }), None) => skipped.push(SkippedFile {
                        path: relative(root, file),
                        reason: format!("class {class} is missing from train/ (no usable images there)"),
                    }),
                    (None, _) => {}
                }
            }
        }
        for (i, class) in train_classes.iter().enumerate() {
            if split != "train" && per_class[i] == 0 {
                warnings.push(format!("class {class} has no images in {split}/"));
            }
        }
        let total = per_class.iter().sum();
        if total == 0 && layout.contains_key(split) {
            problems.push(format!("{split}/ has no usable images"));
        }
        splits.push(SplitCount { split: split.to_string(), total, per_class });
    }
    if train_classes.is_empty() {
        problems.insert(0, "no classes: train/ has no class folder with a usable image".into());
    } else if train_classes.len() == 1 {
        problems.insert(0, format!("only one class ({}): a classifier needs at least two", train_classes[0]));
    }

    let report = DatasetReport {
        root: root.display().to_string(),
        classes: train_classes.iter().map(|f| ClassInfo { folder: f.clone(), name: class_display_name(f) }).collect(),
        splits,
        skipped,
        problems,
        warnings,
        digest: format!("{:x}", hasher.finalize()),
        seconds: started.elapsed().as_secs_f64(),
    };
    Dataset {
        report,
        train: samples.remove("train").unwrap_or_default(),
        valid: samples.remove("valid").unwrap_or_default(),
        test: samples.remove("test").unwrap_or_default(),
    }
}

fn check_all(files: &[PathBuf], threads: usize, root: &Path) -> std::collections::HashMap<PathBuf, FileVerdict> {
    let chunk = files.len().div_ceil(threads).max(1);
    // Links are followed only to files inside the dataset itself.
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let root = root.as_path();
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|f| (f.clone(), check_file(f, root))).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write_jpeg(path: &Path, shade: u8) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let img = image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([shade, (x * 8) as u8, (y * 8) as u8]));
        img.save(path).unwrap();
    }

    fn tiny(root: &Path) {
        for split in SPLITS {
            for (class, shade) in [("001.Cat", 10u8), ("002.Dog", 200)] {
                for i in 0..2 {
                    write_jpeg(&root.join(split).join(class).join(format!("{i}.jpg")), shade);
                }
            }
        }
    }

    #[test]
    fn a_good_dataset_is_counted_per_split_and_class() {
        let dir = tempfile::tempdir().unwrap();
        tiny(dir.path());
        let ds = check(dir.path(), 2);
        assert!(ds.report.can_train(), "{:?}", ds.report.problems);
        assert_eq!(ds.report.classes[1].name, "Dog");
        assert_eq!(ds.report.splits.iter().map(|s| s.total).collect::<Vec<_>>(), [4, 4, 4]);
        assert_eq!(ds.report.splits[0].per_class, [2, 2]);
        assert_eq!(ds.train.len(), 4);
        assert_eq!(ds.report.digest.len(), 64);
        // The digest follows the bytes.
        let before = ds.report.digest.clone();
        write_jpeg(&dir.path().join("test/002.Dog/1.jpg"), 90);
        assert_ne!(check(dir.path(), 1).report.digest, before);
    }

    #[test]
    fn broken_files_are_skipped_with_their_reason() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        tiny(root);
        fs::write(root.join("train/001.Cat/notes.jpg"), b"this is text").unwrap();
        fs::write(root.join("train/001.Cat/empty.jpg"), b"").unwrap();
        let good = fs::read(root.join("train/002.Dog/0.jpg")).unwrap();
        fs::write(root.join("train/002.Dog/cut.jpg"), &good[..good.len() / 2]).unwrap();
        write_jpeg(&root.join("valid/003.Fox/0.jpg"), 50);
        fs::write(root.join("train/README.txt"), b"hello").unwrap();

        let ds = check(root, 2);
        assert!(ds.report.can_train(), "{:?}", ds.report.problems);
        let reason = |p: &str| ds.report.skipped.iter().find(|s| s.path == p).map(|s| s.reason.clone()).unwrap_or_default();
        assert_eq!(reason("train/001.Cat/notes.jpg"), "not an image");
        assert_eq!(reason("train/001.Cat/empty.jpg"), "empty file");
        assert!(reason("train/002.Dog/cut.jpg").starts_with("truncated"), "{}", reason("train/002.Dog/cut.jpg"));
        assert!(reason("valid/003.Fox/0.jpg").contains("missing from train/"));
        assert!(reason("train/README.txt").contains("not inside a class folder"));
        assert_eq!(ds.train.len(), 4, "only the good files train");
    }

    #[test]
    fn an_unusable_dataset_has_problems() {
        let dir = tempfile::tempdir().unwrap();
        let ds = check(dir.path(), 1);
        assert!(!ds.report.can_train());
        assert!(ds.report.problems.iter().any(|p| p.contains("no train/ folder")), "{:?}", ds.report.problems);

        tiny(dir.path());
        fs::remove_dir_all(dir.path().join("test")).unwrap();
        fs::create_dir_all(dir.path().join("test/001.Cat")).unwrap();
        let ds = check(dir.path(), 1);
        assert_eq!(ds.report.problems, ["test/ has no usable images"]);

        let missing = check(&dir.path().join("nope"), 1);
        assert!(missing.report.problems[0].contains("is not a folder"));
    }
}

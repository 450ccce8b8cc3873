//! Sagedeck's code for SageMaker's PyTorch containers (`server/sagemaker/`):
//! `train.py` and `inference.py`, built into the binary. This module packs
//! them as the `sourcedir.tar.gz` a training job fetches, packs a local job's
//! artifact as a deployable `model.tar.gz` (weights, classes, metadata,
//! `code/inference.py`), and unpacks a job's `model.tar.gz` for a local
//! endpoint, refusing anything but plain files inside the destination.

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

pub const TRAIN_PY: &str = include_str!("../../sagemaker/train.py");
pub const INFERENCE_PY: &str = include_str!("../../sagemaker/inference.py");

/// The files of an artifact that a model.tar.gz carries (besides the code).
pub const MODEL_FILES: [&str; 3] = ["model.safetensors", "classes.json", "metadata.json"];
/// The most a model.tar.gz may unpack to, and hold entries: a ResNet-50 is
/// ~100 MB; anything near these is not a Sagedeck model.
pub const MAX_UNPACKED_BYTES: u64 = 4 * 1024 * 1024 * 1024;
const MAX_ENTRIES: usize = 10_000;
/// Every entry's time: the same code packs to the same bytes (and ETag).
const PACKED_AT: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn add(builder: &mut tar::Builder<GzEncoder<Vec<u8>>>, path: &str, bytes: &[u8]) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(PACKED_AT);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    builder.append_data(&mut header, path, bytes)
}

fn finish(builder: tar::Builder<GzEncoder<Vec<u8>>>) -> std::io::Result<Vec<u8>> {
    builder.into_inner()?.finish()
}

/// sourcedir.tar.gz: train.py (the job's `sagemaker_program`) and the
/// inference.py it imports and copies into the model.
pub fn source_dir() -> Vec<u8> {
    let pack = || -> std::io::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), flate2::Compression::default()));
        add(&mut builder, "train.py", TRAIN_PY.as_bytes())?;
        add(&mut builder, "inference.py", INFERENCE_PY.as_bytes())?;
        finish(builder)
    };
    pack().expect("packing two strings in memory cannot fail")
}

/// A local job's artifact as SageMaker's PyTorch inference container takes
/// it: the artifact's files at the top, `code/inference.py` beside them.
pub fn pack_model(artifact_dir: &Path) -> Result<Vec<u8>, String> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for name in MODEL_FILES {
        let path = artifact_dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| format!("the artifact has no readable {name} ({}): {e}", path.display()))?;
        add(&mut builder, name, &bytes).map_err(|e| e.to_string())?;
    }
    add(&mut builder, "code/inference.py", INFERENCE_PY.as_bytes()).map_err(|e| e.to_string())?;
    finish(builder).map_err(|e| e.to_string())
}

/// A path inside a tarball that stays inside the destination: relative,
/// no `..`, no root or prefix.
fn safe_relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Unpacks a model.tar.gz into `dest` (which must not exist yet): plain
/// files and folders only (links, devices and paths leaving `dest` are
/// refused), at most MAX_UNPACKED_BYTES in all. Then checks that it is a
/// model a local endpoint can serve. Returns the files it wrote.
pub fn unpack_model(tar_gz: &Path, dest: &Path) -> Result<Vec<String>, String> {
    let file = std::fs::File::open(tar_gz).map_err(|e| format!("cannot open {}: {e}", tar_gz.display()))?;
    let mut archive = tar::Archive::new(GzDecoder::new(file));
    std::fs::create_dir_all(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let mut written = Vec::new();
    let mut total = 0u64;
    let entries = archive.entries().map_err(|e| format!("model.tar.gz is not a gzipped tar file: {e}"))?;
    for (i, entry) in entries.enumerate() {
        if i >= MAX_ENTRIES {
            return Err(format!("model.tar.gz has more than {MAX_ENTRIES} entries"));
        }
        let mut entry = entry.map_err(|e| format!("model.tar.gz is damaged: {e}"))?;
        let raw = entry.path().map_err(|e| format!("model.tar.gz has an unreadable path: {e}"))?.into_owned();
        let Some(relative) = safe_relative(&raw) else {
            return Err(format!("model.tar.gz holds {:?}, a path outside its own folder", raw.display().to_string()));
        };
        let target = dest.join(&relative);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.size();
                total += size;
                if total > MAX_UNPACKED_BYTES {
                    return Err(format!("model.tar.gz unpacks to more than {} GB", MAX_UNPACKED_BYTES >> 30));
                }
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
                }
                let mut out = std::fs::File::create(&target).map_err(|e| format!("cannot write {}: {e}", target.display()))?;
                // Bounded by the header's size, which `total` already counted.
                let copied = std::io::copy(&mut (&mut entry).take(size), &mut out)
                    .map_err(|e| format!("model.tar.gz is damaged at {}: {e}", relative.display()))?;
                if copied != size {
                    return Err(format!("model.tar.gz is cut off inside {}", relative.display()));
                }
                written.push(relative.display().to_string());
            }
            // pax/GNU headers describe the next entry; the tar crate applies them.
            tar::EntryType::XHeader | tar::EntryType::XGlobalHeader | tar::EntryType::GNULongName => {}
            other => {
                return Err(format!("model.tar.gz holds {} as a {other:?}: only plain files are accepted", relative.display()));
            }
        }
    }
    written.sort();
    if !dest.join("model.safetensors").is_file() {
        return Err(format!(
            "model.tar.gz has no weights (model.safetensors): it holds {}. Was it made by Sagedeck's train.py?",
            if written.is_empty() { "nothing".to_string() } else { written.join(", ") }
        ));
    }
    if !dest.join("metadata.json").is_file() {
        return Err("model.tar.gz has no metadata.json: Sagedeck cannot tell its architecture, input size or classes".into());
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(tar_gz: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut archive = tar::Archive::new(GzDecoder::new(tar_gz));
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().display().to_string();
                let mut bytes = Vec::new();
                e.read_to_end(&mut bytes).unwrap();
                (path, bytes)
            })
            .collect()
    }

    #[test]
    fn the_source_dir_holds_both_scripts_and_packs_the_same_every_time() {
        let packed = source_dir();
        let files = entries(&packed);
        assert_eq!(files.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(), ["train.py", "inference.py"]);
        assert!(String::from_utf8_lossy(&files[0].1).contains("def main("));
        assert!(String::from_utf8_lossy(&files[1].1).contains("def model_fn(model_dir)"));
        assert_eq!(packed, source_dir(), "deterministic, so its ETag is stable");
    }

    #[test]
    fn a_packed_artifact_unpacks_to_the_same_files_and_bad_archives_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let artifact = dir.path().join("artifact");
        std::fs::create_dir_all(&artifact).unwrap();
        for (name, body) in [("model.safetensors", "weights"), ("classes.json", "[\"a\"]"), ("metadata.json", "{}")] {
            std::fs::write(artifact.join(name), body).unwrap();
        }
        let packed = pack_model(&artifact).unwrap();
        let tar_gz = dir.path().join("model.tar.gz");
        std::fs::write(&tar_gz, &packed).unwrap();
        let out = dir.path().join("out");
        let files = unpack_model(&tar_gz, &out).unwrap();
        assert_eq!(files, ["classes.json", "code/inference.py", "metadata.json", "model.safetensors"]);
        assert_eq!(std::fs::read_to_string(out.join("model.safetensors")).unwrap(), "weights");
        assert_eq!(std::fs::read_to_string(out.join("code/inference.py")).unwrap(), INFERENCE_PY);

        // No weights.
        std::fs::remove_file(artifact.join("model.safetensors")).unwrap();
        assert!(pack_model(&artifact).unwrap_err().contains("model.safetensors"));
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        add(&mut builder, "metadata.json", b"{}").unwrap();
        std::fs::write(&tar_gz, finish(builder).unwrap()).unwrap();
        let error = unpack_model(&tar_gz, &dir.path().join("no-weights")).unwrap_err();
        assert!(error.contains("no weights") && error.contains("metadata.json"), "{error}");

        // A path that climbs out, and a symlink.
        let mut raw = tar::Builder::new(GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_entry_type(tar::EntryType::Regular);
        header.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../evil.x");
        header.set_cksum();
        raw.append(&header, &b"x"[..]).unwrap();
        std::fs::write(&tar_gz, finish(raw).unwrap()).unwrap();
        assert!(unpack_model(&tar_gz, &dir.path().join("climb")).unwrap_err().contains("outside"));
        assert!(!dir.path().join("evil.x").exists());
        let mut link = tar::Builder::new(GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_entry_type(tar::EntryType::Symlink);
        link.append_link(&mut header, "model.safetensors", "/etc/passwd").unwrap();
        std::fs::write(&tar_gz, finish(link).unwrap()).unwrap();
        assert!(unpack_model(&tar_gz, &dir.path().join("link")).unwrap_err().contains("only plain files"));
        // Not a tarball at all.
        std::fs::write(&tar_gz, b"junk").unwrap();
        assert!(unpack_model(&tar_gz, &dir.path().join("junk")).is_err());
    }
}

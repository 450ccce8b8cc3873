//! The folders the console may read from on behalf of a request: datasets,
//! test-bench folders and backbone weights. A path from a form is accepted only
//! inside one of them (the data folder, plus any `--dataset-root`), after
//! symlinks are resolved, and never with a `..` component.

use app::ApiError;
use std::path::{Component, Path, PathBuf};

#[derive(Clone, Debug)]
pub struct ReadableRoots(Vec<PathBuf>);

impl ReadableRoots {
    /// Roots that do not exist are kept as given (nothing can be under them yet).
    pub fn new(roots: impl IntoIterator<Item = PathBuf>) -> Self {
        ReadableRoots(roots.into_iter().map(|r| canonical_or_absolute(&r)).collect())
    }

    /// The roots themselves (resolved), for following links only into them.
    pub fn paths(&self) -> &[PathBuf] {
        &self.0
    }

    pub fn list(&self) -> String {
        self.0.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
    }

    /// The absolute path `input` names, if it lies under a root. `what` names
    /// the field in the error ("dataset", "folder", "backbone_weights").
    pub fn resolve(&self, input: &str, what: &str) -> Result<PathBuf, ApiError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(ApiError::Invalid(format!("{what}: give a path")));
        }
        if input.contains('\0') {
            return Err(ApiError::Invalid(format!("{what}: the path contains a NUL byte")));
        }
        let path = Path::new(input);
        if path.components().any(|c| c == Component::ParentDir) {
            return Err(ApiError::Invalid(format!(
                "{what}: {input:?} contains '..'; give the folder's own path (paths may not climb out of the dataset folders)"
            )));
        }
        let resolved = canonical_or_absolute(path);
        if self.0.iter().any(|root| resolved.starts_with(root)) {
            Ok(resolved)
        } else {
            Err(ApiError::Invalid(format!(
                "{what}: {} is outside the folders this console reads from ({}); start it with --dataset-root DIR to add one",
                resolved.display(),
                self.list()
            )))
        }
    }
}

/// The path with symlinks resolved when it exists; otherwise its deepest
/// existing ancestor resolved and the rest appended (so a symlinked parent
/// cannot smuggle a path out either).
fn canonical_or_absolute(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(path)).unwrap_or_else(|_| path.to_path_buf())
    };
    if let Ok(c) = absolute.canonicalize() {
        return c;
    }
    let mut rest = Vec::new();
    let mut cursor = absolute.as_path();
    while let Some(parent) = cursor.parent() {
        rest.push(cursor.file_name().map(|n| n.to_os_string()).unwrap_or_default());
        if let Ok(c) = parent.canonicalize() {
            return rest.iter().rev().fold(c, |acc, part| acc.join(part));
        }
        cursor = parent;
    }
    absolute
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_inside_the_roots_only() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("datasets/dogs")).unwrap();
        std::fs::create_dir_all(dir.path().join("secret")).unwrap();
        let roots = ReadableRoots::new([data.clone()]);
        let inside = roots.resolve(data.join("datasets/dogs").to_str().unwrap(), "dataset").unwrap();
        assert!(inside.ends_with("datasets/dogs"));
        // Not there yet, but inside: allowed (the dataset check says it is missing).
        assert!(roots.resolve(data.join("datasets/new").to_str().unwrap(), "dataset").is_ok());

        for bad in [
            format!("{}/datasets/../../secret", data.display()),
            "../../etc/passwd".to_string(),
            "/etc".to_string(),
            dir.path().join("secret").display().to_string(),
            format!("{}-evil", data.display()),
            "".to_string(),
            "a\0b".to_string(),
        ] {
            let err = roots.resolve(&bad, "dataset").unwrap_err();
            assert_eq!(err.status(), 400, "{bad:?}");
        }
        assert!(roots.resolve("/etc", "dataset").unwrap_err().message().contains("--dataset-root"));
    }

    #[test]
    fn a_symlink_out_of_the_root_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(dir.path().join("secret/inner")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), data.join("link")).unwrap();
        let roots = ReadableRoots::new([data.clone()]);
        assert!(roots.resolve(data.join("link").to_str().unwrap(), "dataset").is_err());
        assert!(roots.resolve(data.join("link/inner").to_str().unwrap(), "dataset").is_err());
        assert!(roots.resolve(data.join("link/not-yet").to_str().unwrap(), "dataset").is_err());
    }
}

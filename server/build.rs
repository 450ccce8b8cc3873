//! Two things the `sagedeck` binary needs from outside its sources:
//!
//! - an rpath to the libtorch that torch-sys linked against, so it starts
//!   without LD_LIBRARY_PATH. torch-sys exports the folder as
//!   DEP_TCH_LIBTORCH_LIB (its `links = "tch"` key);
//! - the migrations folder, embedded (`$OUT_DIR/migrations.rs`, read by
//!   `store::EmbeddedMigrations`). sqlx's `migrate!` macro did this before;
//!   its macros crate builds a second copy of sqlx, SQLite and tokio for the
//!   compiler (docs/build-times.md), and cargo could not tell that a new
//!   migration needed a rebuild. Listing the folder here can.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    embed_migrations();
}

/// Writes `MIGRATION_FILES`: every `.sql` file of ../migrations by name,
/// its text through `include_str!` (the compiler reads it, so an edit is a
/// rebuild). Which files are migrations and what they are called is decided
/// where sqlx's rules are at hand, in store.rs.
fn embed_migrations() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let folder = Path::new(&manifest).join("../migrations");
    let folder = folder.canonicalize().unwrap_or_else(|e| panic!("cannot read {}: {e}", folder.display()));
    // A folder: cargo reruns this when any file in it changes or is added.
    println!("cargo:rerun-if-changed={}", folder.display());
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", folder.display()))
        .map(|entry| entry.expect("a readable folder entry"))
        .filter(|entry| entry.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .collect();
    names.sort();
    let mut out = String::from("/// The migrations folder's `.sql` files: (file name, SQL), by name.\n");
    out.push_str("pub(crate) const MIGRATION_FILES: &[(&str, &str)] = &[\n");
    for name in &names {
        let path = folder.join(name);
        out.push_str(&format!("    ({name:?}, include_str!({:?})),\n", path.display().to_string()));
    }
    out.push_str("];\n");
    let target = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("migrations.rs");
    std::fs::write(&target, out).unwrap_or_else(|e| panic!("cannot write {}: {e}", target.display()));
}

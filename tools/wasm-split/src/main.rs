//! `sagedeck-wasm-split INPUT.wasm SPLIT_DIR OUT_DIR`: turns the browser
//! half's wasm (built with `-C link-arg=--emit-relocs`) into what
//! `sagedeck site` serves, in two steps:
//!
//! 1. splits it at its split points, the lazy routes of app/src/shell.rs,
//!    into SPLIT_DIR: the main module `sagedeck_split.wasm`, one `.wasm`
//!    chunk per page module, the loader `__wasm_split.js` the main module
//!    imports (it compiles a chunk once, starting with the page's own, and
//!    imports `initSync` from `./sagedeck.js`, wasm-bindgen's module), and
//!    `__wasm_split_manifest.json`, the chunks of each split point, which the
//!    server reads to preload a page's chunk;
//! 2. runs wasm-bindgen on the main module, as `wasm-bindgen --target web
//!    --no-typescript --keep-lld-exports --out-name sagedeck` would (the
//!    chunks import the table and the shared functions the split exported),
//!    into OUT_DIR, and copies the chunks, the loader and the manifest there.
//!
//! scripts/build.sh then runs wasm-opt on each module, and `sagedeck site`
//! gives every file a content-hashed name and rewrites the names inside the
//! loader and the manifest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let (Some(input), Some(split_dir), Some(out)) = (args.next(), args.next(), args.next()) else {
        return Err("usage: sagedeck-wasm-split INPUT.wasm SPLIT_DIR OUT_DIR".into());
    };
    let main_module = split(&input, &split_dir)?;
    bindgen(&main_module, &out)?;
    for entry in std::fs::read_dir(&split_dir)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("split_") || name.starts_with("__wasm_split") {
            std::fs::copy(&path, out.join(&*name))?;
        }
    }
    Ok(())
}

/// Step 1; the main module's path.
fn split(input: &Path, out: &Path) -> Result<PathBuf> {
    let input_wasm = std::fs::read(input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    std::fs::create_dir_all(out)?;
    let main_out = out.join("sagedeck_split.wasm");
    let split = wasm_split_cli_support::transform({
        let mut options = wasm_split_cli_support::Options::new(&input_wasm);
        options.output_dir = out;
        options.main_out_path = &main_out;
        options.main_module = "./sagedeck.js";
        options.link_name = "./__wasm_split.js";
        options
    })
    .map_err(|e| format!("splitting {} failed: {e:?}", input.display()))?;
    let manifest: BTreeMap<_, _> = split.prefetch_map.into_iter().collect();
    std::fs::write(out.join("__wasm_split_manifest.json"), serde_json::to_vec_pretty(&manifest)?)?;
    let main_size = std::fs::metadata(&main_out)?.len();
    println!("main module: {main_size} bytes; {} chunks:", split.split_modules.len());
    let mut chunks = split.split_modules;
    chunks.sort();
    for chunk in chunks {
        let name = chunk.file_name().unwrap_or_default().to_string_lossy().into_owned();
        println!("  {name:<48} {:>9} bytes", std::fs::metadata(&chunk)?.len());
    }
    Ok(main_out)
}

/// Step 2: the settings the CLI's `--target web --no-typescript
/// --keep-lld-exports --out-name sagedeck` give, the CLI's defaults for the rest.
fn bindgen(main_module: &Path, out: &Path) -> Result<()> {
    let mut bindgen = wasm_bindgen_cli_support::Bindgen::new();
    #[allow(deprecated)] // the CLI sets it from its flag (off) too
    bindgen
        .web(true)?
        .input_path(main_module)
        .typescript(false)
        .keep_lld_exports(true)
        .omit_default_module_path(false)
        .reference_types(false)
        .out_name("sagedeck");
    bindgen.generate(out).map_err(|e| format!("wasm-bindgen on {} failed: {e:#}", main_module.display()))?;
    Ok(())
}

//! `sagedeck-wasm-split INPUT.wasm OUT_DIR`: splits the browser half's wasm
//! (built with `-C link-arg=--emit-relocs`) at its split points, the lazy
//! routes of app/src/shell.rs, into what wasm-bindgen and `sagedeck site`
//! take next:
//!
//! - `OUT_DIR/sagedeck_split.wasm`, the main module (for wasm-bindgen);
//! - one `.wasm` chunk per page, plus chunks of code several pages share;
//! - `OUT_DIR/__wasm_split.js`, the loader the main module imports: it
//!   fetches a chunk the first time one of its functions is called, and
//!   imports `initSync` from `./sagedeck.js` (wasm-bindgen's module);
//! - `OUT_DIR/__wasm_split_manifest.json`: for each split point, the chunks
//!   it needs, which the server reads to preload a page's chunks.
//!
//! `sagedeck site` then gives every one of these files a content-hashed name
//! and rewrites the names inside the loader and the manifest.

use std::collections::BTreeMap;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(input), Some(out)) = (args.next().map(PathBuf::from), args.next().map(PathBuf::from)) else {
        return Err("usage: sagedeck-wasm-split INPUT.wasm OUT_DIR".into());
    };
    let input_wasm = std::fs::read(&input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    std::fs::create_dir_all(&out)?;
    let main_out = out.join("sagedeck_split.wasm");
    let split = wasm_split_cli_support::transform({
        let mut options = wasm_split_cli_support::Options::new(&input_wasm);
        options.output_dir = &out;
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
    Ok(())
}

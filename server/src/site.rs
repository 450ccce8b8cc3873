//! The browser half as it is served: `sagedeck site` takes what
//! wasm-bindgen wrote (sagedeck.js, sagedeck_bg.wasm) and the stylesheet,
//! names each file by its content's hash (so a browser may keep it for a
//! year: a new build has new names), writes brotli and gzip copies beside
//! them for the server to send as they are, copies the public files, and
//! writes the hash file Leptos reads next to the binary. scripts/build.sh
//! runs it after the builds; it replaces the part of cargo-leptos the
//! console needs, so a fresh machine does not compile cargo-leptos.
//!
//! When the wasm was split by page (tools/wasm-split, lazy routes in
//! app/src/shell.rs), the folder also holds the pages' chunks, the loader
//! that fetches them (`__wasm_split.js`) and the manifest naming each
//! split's chunks. Those get hashed names too, and the names inside the
//! loader and the manifest are rewritten to match. The loader and
//! wasm-bindgen's module import each other, so neither name can hold a hash
//! of the other's final text: both are named by one hash of the two texts
//! taken together, which changes whenever either does.

use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, clap::Args)]
pub struct SiteArgs {
    /// wasm-bindgen's output folder (sagedeck.js and sagedeck_bg.wasm).
    #[arg(long)]
    pub bindgen: PathBuf,
    /// The stylesheet.
    #[arg(long, default_value = "style/main.css")]
    pub style: PathBuf,
    /// Files served from the site's root as they are (favicon…).
    #[arg(long, default_value = "public")]
    pub public: PathBuf,
    /// The site root the console serves (`--site-root`); pkg/ goes in it.
    #[arg(long, default_value = "target/site")]
    pub out: PathBuf,
    /// Where Leptos finds the hashes: `hash.txt` next to the sagedeck binary.
    #[arg(long)]
    pub hash_file: Option<PathBuf>,
}

/// The first 16 hex digits of the content's SHA-256.
pub fn content_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Whether a served file name carries a content hash (`sagedeck.0123456789abcdef.wasm`):
/// such a file never changes, so it may be cached for good.
pub fn is_hashed(file_name: &str) -> bool {
    let parts: Vec<&str> = file_name.split('.').collect();
    parts.len() >= 3 && parts[parts.len() - 2].len() == 16 && parts[parts.len() - 2].bytes().all(|b| b.is_ascii_hexdigit())
}

fn brotli(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    // Quality 11 for what the browser downloads in a release build; a debug
    // wasm (tens of MB) gets a quicker setting so the build stays quick.
    let quality = if bytes.len() <= 8 << 20 { 11 } else { 5 };
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 1 << 16, quality, 22);
        w.write_all(bytes)?;
    }
    Ok(out)
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    w.write_all(bytes)?;
    w.finish()
}

/// One served file: its hashed name, and its raw, brotli and gzip sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub name: String,
    pub raw: usize,
    pub brotli: usize,
    pub gzip: usize,
}

/// Writes `bytes` as `dir/{name}` with its .br and .gz copies.
fn write_compressed(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<Written> {
    let (br, gz) = (brotli(bytes)?, gzip(bytes)?);
    std::fs::write(dir.join(name), bytes)?;
    std::fs::write(dir.join(format!("{name}.br")), &br)?;
    std::fs::write(dir.join(format!("{name}.gz")), &gz)?;
    Ok(Written { name: name.to_string(), raw: bytes.len(), brotli: br.len(), gzip: gz.len() })
}

/// A build's served files, named first and written at the end: their
/// compression (brotli at quality 11 on ~4 MB of wasm, most of the step) runs
/// on every core, and a build that fails while naming writes nothing.
#[derive(Default)]
struct Outputs(Vec<(String, Vec<u8>)>);

impl Outputs {
    /// `bytes` as `{name}`.
    fn add(&mut self, name: String, bytes: Vec<u8>) {
        self.0.push((name, bytes));
    }

    /// `bytes` as `{stem}.{hash}.{ext}`; returns the hash.
    fn add_hashed(&mut self, stem: &str, ext: &str, bytes: Vec<u8>) -> String {
        let hash = content_hash(&bytes);
        self.add(format!("{stem}.{hash}.{ext}"), bytes);
        hash
    }

    /// Writes every file with its copies into `dir`, the largest first so
    /// that no big file starts last; returns them in the order added.
    fn write(self, dir: &Path) -> anyhow::Result<Vec<Written>> {
        let files = self.0;
        let mut order: Vec<usize> = (0..files.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(files[i].1.len()));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let done = std::sync::Mutex::new(Vec::with_capacity(files.len()));
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(files.len().max(1));
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    while let Some(&i) = order.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
                        let (name, bytes) = &files[i];
                        let written = write_compressed(dir, name, bytes);
                        done.lock().unwrap_or_else(|e| e.into_inner()).push((i, written));
                    }
                });
            }
        });
        let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
        done.sort_by_key(|(i, _)| *i);
        done.into_iter().map(|(_, written)| written).collect()
    }
}

/// The names `sagedeck site` wrote last time, in pkg/: kept one build more.
const BUILD_LIST: &str = ".build-files";

/// What the split step adds to wasm-bindgen's folder.
const SPLIT_LOADER: &str = "__wasm_split.js";
const SPLIT_MANIFEST: &str = "__wasm_split_manifest.json";
/// Where wasm-bindgen's module and the loader name each other.
const MAIN_MODULE_IMPORT: &str = "from \"./sagedeck.js\"";
const LOADER_IMPORT: &str = "from \"./__wasm_split.js\"";

/// The loader with each chunk's file name (`./split_x.wasm`) replaced by its
/// hashed one (`./split_x.0123456789abcdef.wasm`); `renamed` pairs the plain
/// stems with the hashed ones. A chunk the loader does not name is an error:
/// the browser could never fetch it.
pub fn link_chunks(loader: &str, renamed: &[(String, String)]) -> anyhow::Result<String> {
    let mut out = loader.to_string();
    for (stem, hashed) in renamed {
        let plain = format!("\"./{stem}.wasm\"");
        anyhow::ensure!(out.contains(&plain), "the split loader does not fetch {stem}.wasm");
        out = out.replace(&plain, &format!("\"./{hashed}.wasm\""));
    }
    Ok(out)
}

/// wasm-bindgen's module and the loader, each importing the other by its
/// hashed name, and the one hash both names carry. Only the `import … from`
/// specifiers change: the wasm's import table names the loader's module by
/// its plain name, which is also the key wasm-bindgen's imports object uses.
pub fn name_pair(js: &str, loader: &str) -> anyhow::Result<(String, String, String)> {
    anyhow::ensure!(js.contains(LOADER_IMPORT), "sagedeck.js does not import the split loader");
    anyhow::ensure!(loader.contains(MAIN_MODULE_IMPORT), "the split loader does not import sagedeck.js");
    let hash = content_hash(format!("{js}\u{0}{loader}").as_bytes());
    let js = js.replace(LOADER_IMPORT, &format!("from \"./__wasm_split.{hash}.js\""));
    let loader = loader.replace(MAIN_MODULE_IMPORT, &format!("from \"./sagedeck.{hash}.js\""));
    Ok((js, loader, hash))
}

/// A file name's stem when it is one of the split's chunks (`split_….wasm`).
fn chunk_stem(file_name: &str) -> Option<&str> {
    file_name.strip_prefix("split_").and(file_name.strip_suffix(".wasm"))
}

fn read(p: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))
}

/// The split's files from `bindgen` under hashed names: the chunks, the
/// manifest and the loader rewritten to name them, and wasm-bindgen's module
/// `js`, named with the loader by one hash. Adds them to `outputs` and their
/// hash.txt lines to `hashes`; returns the module's hash.
fn add_split(bindgen: &Path, js: &str, outputs: &mut Outputs, hashes: &mut Vec<String>) -> anyhow::Result<String> {
    // The chunks first: the loader and the manifest name them.
    let mut chunks = Vec::new();
    for entry in std::fs::read_dir(bindgen)? {
        let path = entry?.path();
        if let Some(stem) = path.file_name().and_then(|n| n.to_str()).and_then(chunk_stem) {
            chunks.push((stem.to_string(), path));
        }
    }
    chunks.sort();
    let mut renamed = Vec::new();
    for (stem, path) in &chunks {
        let hash = outputs.add_hashed(stem, "wasm", read(path)?);
        renamed.push((stem.clone(), format!("{stem}.{hash}")));
    }
    let loader = link_chunks(&String::from_utf8(read(&bindgen.join(SPLIT_LOADER))?)?, &renamed)?;
    let manifest: std::collections::BTreeMap<String, Vec<String>> = serde_json::from_slice(&read(&bindgen.join(SPLIT_MANIFEST))?)?;
    let manifest: std::collections::BTreeMap<_, Vec<String>> = manifest
        .into_iter()
        .map(|(split, stems)| {
            let stems = stems
                .iter()
                .map(|s| renamed.iter().find(|(plain, _)| plain == s).map(|(_, hashed)| hashed.clone()))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| anyhow::anyhow!("the split manifest names a chunk that is not there ({split})"))?;
            Ok((split, stems))
        })
        .collect::<anyhow::Result<_>>()?;
    let manifest_hash = outputs.add_hashed("__wasm_split_manifest", "json", serde_json::to_vec(&manifest)?);
    hashes.push(format!("manifest: {manifest_hash}"));
    let (js, loader, pair_hash) = name_pair(js, &loader)?;
    outputs.add(format!("__wasm_split.{pair_hash}.js"), loader.into_bytes());
    hashes.push(format!("split: {pair_hash}"));
    outputs.add(format!("sagedeck.{pair_hash}.js"), js.into_bytes());
    Ok(pair_hash)
}

pub fn assemble(args: SiteArgs) -> anyhow::Result<()> {
    let js = String::from_utf8(read(&args.bindgen.join("sagedeck.js"))?)?;
    let wasm = read(&args.bindgen.join("sagedeck_bg.wasm"))?;
    let css = read(&args.style)?;
    let pkg = args.out.join("pkg");
    std::fs::create_dir_all(&pkg)?;
    // The previous build's files stay for one build more: a tab opened
    // before an upgrade still holds the old main module, and its first visit
    // to another page module fetches that old build's chunk. Older files go
    // (hashed names would pile up otherwise).
    let previous = std::fs::read_to_string(pkg.join(BUILD_LIST)).unwrap_or_default();
    let previous: std::collections::HashSet<&str> = previous.lines().collect();
    for entry in std::fs::read_dir(&pkg)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let base = name.trim_end_matches(".br").trim_end_matches(".gz");
        if path.is_file() && name != BUILD_LIST && !previous.contains(base) {
            std::fs::remove_file(&path)?;
        }
    }
    let mut outputs = Outputs::default();
    let mut hashes = Vec::new();
    let wasm_hash = outputs.add_hashed("sagedeck", "wasm", wasm);
    let css_hash = outputs.add_hashed("sagedeck", "css", css.clone());
    let js_hash = if args.bindgen.join(SPLIT_LOADER).exists() {
        add_split(&args.bindgen, &js, &mut outputs, &mut hashes)?
    } else {
        outputs.add_hashed("sagedeck", "js", js.into_bytes())
    };
    let written = outputs.write(&pkg)?;
    // The sign-in page is plain HTML written without Leptos: it links the
    // stylesheet by its plain name (served with revalidation).
    std::fs::write(pkg.join("sagedeck.css"), &css)?;
    if args.public.is_dir() {
        for entry in std::fs::read_dir(&args.public)? {
            let path = entry?.path();
            if path.is_file() {
                std::fs::copy(&path, args.out.join(path.file_name().unwrap_or_default()))?;
            }
        }
    }
    let hash_file = match args.hash_file {
        Some(p) => p,
        None => std::env::current_exe()?.parent().map(|d| d.join("hash.txt")).unwrap_or_else(|| PathBuf::from("hash.txt")),
    };
    hashes.splice(0..0, [format!("js: {js_hash}"), format!("wasm: {wasm_hash}"), format!("css: {css_hash}")]);
    std::fs::write(&hash_file, hashes.join("\n") + "\n")?;
    let this_build: Vec<&str> = written.iter().map(|f| f.name.as_str()).collect();
    std::fs::write(pkg.join(BUILD_LIST), this_build.join("\n") + "\n")?;
    for f in &written {
        println!("{:<60} {:>10} bytes · brotli {:>9} · gzip {:>9}", f.name, f.raw, f.brotli, f.gzip);
    }
    println!("site in {} · hashes in {}", args.out.display(), hash_file.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_are_told_from_plain_ones() {
        let h = content_hash(b"sagedeck");
        assert_eq!(h.len(), 16);
        assert!(is_hashed(&format!("sagedeck.{h}.wasm")));
        assert!(!is_hashed("sagedeck.wasm"));
        assert!(!is_hashed("sagedeck.css"));
        assert!(!is_hashed("sagedeck.not-a-hash-at-all.js"));
    }

    #[test]
    fn a_site_is_assembled_with_hashed_precompressed_files() {
        let dir = tempfile::tempdir().unwrap();
        let bindgen = dir.path().join("bindgen");
        std::fs::create_dir_all(&bindgen).unwrap();
        std::fs::write(bindgen.join("sagedeck.js"), "export default function init() {}".repeat(100)).unwrap();
        std::fs::write(bindgen.join("sagedeck_bg.wasm"), vec![0u8; 50_000]).unwrap();
        std::fs::write(dir.path().join("main.css"), "body { color: red }").unwrap();
        let out = dir.path().join("site");
        std::fs::create_dir_all(out.join("pkg")).unwrap();
        std::fs::write(out.join("pkg/sagedeck.0000000000000000.js"), "old").unwrap();
        let hash_file = dir.path().join("hash.txt");
        assemble(SiteArgs {
            bindgen,
            style: dir.path().join("main.css"),
            public: dir.path().join("none"),
            out: out.clone(),
            hash_file: Some(hash_file.clone()),
        })
        .unwrap();
        let hashes = std::fs::read_to_string(&hash_file).unwrap();
        let wasm_hash = hashes.lines().find_map(|l| l.strip_prefix("wasm: ")).unwrap();
        let wasm = out.join(format!("pkg/sagedeck.{wasm_hash}.wasm"));
        assert_eq!(std::fs::read(&wasm).unwrap().len(), 50_000);
        let br = std::fs::read(wasm.with_extension("wasm.br")).unwrap();
        let mut back = Vec::new();
        brotli::BrotliDecompress(&mut std::io::Cursor::new(&br), &mut back).unwrap();
        assert_eq!(back.len(), 50_000, "the brotli copy is the same file");
        assert!(br.len() < 1000 && std::fs::metadata(wasm.with_extension("wasm.gz")).unwrap().len() < 1000);
        assert!(!out.join("pkg/sagedeck.0000000000000000.js").exists(), "the old build's files are gone");
        assert!(out.join("pkg/sagedeck.css").exists());
    }

    /// A split build's folder: wasm-bindgen's module importing the loader,
    /// the loader importing it back and fetching one chunk, the manifest.
    fn split_bindgen(dir: &Path, chunk: &[u8]) -> PathBuf {
        let bindgen = dir.join("bindgen");
        std::fs::create_dir_all(&bindgen).unwrap();
        let js = "import * as import1 from \"./__wasm_split.js\"\nconst imports = { \"./__wasm_split.js\": import1 };\n";
        std::fs::write(bindgen.join("sagedeck.js"), js).unwrap();
        std::fs::write(bindgen.join("sagedeck_bg.wasm"), vec![1u8; 5_000]).unwrap();
        let loader = "import { initSync } from \"./sagedeck.js\";\nconst src = fetch(new URL(\"./split_iam_1.wasm\", import.meta.url));\n";
        std::fs::write(bindgen.join(SPLIT_LOADER), loader).unwrap();
        std::fs::write(bindgen.join(SPLIT_MANIFEST), r#"{"iam_1": ["split_iam_1"]}"#).unwrap();
        std::fs::write(bindgen.join("split_iam_1.wasm"), chunk).unwrap();
        std::fs::write(dir.join("main.css"), "body {}").unwrap();
        bindgen
    }

    fn assemble_split(dir: &Path, chunk: &[u8]) -> (PathBuf, std::collections::HashMap<String, String>) {
        let bindgen = split_bindgen(dir, chunk);
        let out = dir.join("site");
        let hash_file = dir.join("hash.txt");
        assemble(SiteArgs { bindgen, style: dir.join("main.css"), public: dir.join("none"), out: out.clone(), hash_file: Some(hash_file.clone()) })
            .unwrap();
        let hashes = std::fs::read_to_string(&hash_file).unwrap();
        let hashes = hashes.lines().filter_map(|l| l.split_once(": ")).map(|(k, v)| (k.to_string(), v.to_string())).collect();
        (out.join("pkg"), hashes)
    }

    #[test]
    fn a_split_site_names_the_loader_the_chunks_and_the_manifest_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        let (pkg, hashes) = assemble_split(dir.path(), &[7u8; 3_000]);
        let pair = &hashes["split"];
        assert_eq!(&hashes["js"], pair, "the module and the loader share one hash");
        let chunk = std::fs::read_dir(&pkg)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .find(|n| n.starts_with("split_iam_1.") && n.ends_with(".wasm"))
            .expect("the chunk is written under a hashed name");
        assert!(is_hashed(&chunk), "{chunk}");
        assert_eq!(std::fs::read(pkg.join(&chunk)).unwrap(), vec![7u8; 3_000]);
        assert!(pkg.join(format!("{chunk}.br")).exists());

        let js = std::fs::read_to_string(pkg.join(format!("sagedeck.{pair}.js"))).unwrap();
        assert!(js.contains(&format!("from \"./__wasm_split.{pair}.js\"")), "{js}");
        assert!(js.contains("\"./__wasm_split.js\": import1"), "the imports object keeps the wasm's module name: {js}");
        let loader = std::fs::read_to_string(pkg.join(format!("__wasm_split.{pair}.js"))).unwrap();
        assert!(loader.contains(&format!("from \"./sagedeck.{pair}.js\"")), "{loader}");
        assert!(loader.contains(&format!("\"./{chunk}\"")), "{loader}");
        let manifest = std::fs::read_to_string(pkg.join(format!("__wasm_split_manifest.{}.json", hashes["manifest"]))).unwrap();
        let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        assert_eq!(manifest["iam_1"][0].as_str().map(|s| format!("{s}.wasm")), Some(chunk));

        // A new chunk is a new loader, so a new name for the module and the
        // loader both: a browser never pairs a cached one with a new one.
        let again = tempfile::tempdir().unwrap();
        let (_, changed) = assemble_split(again.path(), &[8u8; 3_000]);
        assert_ne!(changed["split"], *pair);
    }

    #[test]
    fn the_previous_build_stays_for_one_build_more() {
        let dir = tempfile::tempdir().unwrap();
        let chunks = |pkg: &Path| -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(pkg)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.starts_with("split_iam_1.") && n.ends_with(".wasm"))
                .collect();
            names.sort();
            names
        };
        let (pkg, first) = assemble_split(dir.path(), &[1u8; 3_000]);
        let first_chunk = chunks(&pkg);
        assert_eq!(first_chunk.len(), 1);
        // A tab opened on the first build may still ask for its chunk and loader.
        let (_, second) = assemble_split(dir.path(), &[2u8; 3_000]);
        assert_eq!(chunks(&pkg).len(), 2);
        assert!(pkg.join(&first_chunk[0]).exists() && pkg.join(format!("{}.br", first_chunk[0])).exists());
        assert!(pkg.join(format!("__wasm_split.{}.js", first["split"])).exists());
        // Two builds on, the first one's files are gone.
        let (_, third) = assemble_split(dir.path(), &[3u8; 3_000]);
        assert!(!pkg.join(&first_chunk[0]).exists() && !pkg.join(format!("{}.br", first_chunk[0])).exists());
        assert!(!pkg.join(format!("__wasm_split.{}.js", first["split"])).exists());
        assert!(pkg.join(format!("__wasm_split.{}.js", second["split"])).exists());
        assert!(pkg.join(format!("__wasm_split.{}.js", third["split"])).exists());
        assert_eq!(chunks(&pkg).len(), 2);
    }

    #[test]
    fn a_chunk_the_loader_does_not_fetch_is_an_error() {
        let renamed = vec![("split_other".to_string(), "split_other.0123456789abcdef".to_string())];
        assert!(link_chunks("fetch(new URL(\"./split_iam.wasm\", import.meta.url))", &renamed).is_err());
        assert!(name_pair("no import here", "import { initSync } from \"./sagedeck.js\";").is_err());
    }
}

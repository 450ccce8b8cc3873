//! The browser half as it is served: `sagedeck site` takes what
//! wasm-bindgen wrote (sagedeck.js, sagedeck_bg.wasm) and the stylesheet,
//! names each file by its content's hash (so a browser may keep it for a
//! year: a new build has new names), writes brotli and gzip copies beside
//! them for the server to send as they are, copies the public files, and
//! writes the hash file Leptos reads next to the binary. scripts/build.sh
//! runs it after the builds; it replaces the part of cargo-leptos the
//! console needs, so a fresh machine does not compile cargo-leptos.

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

/// Writes `bytes` as `dir/{stem}.{hash}.{ext}` with its .br and .gz copies.
fn write_hashed(dir: &Path, stem: &str, ext: &str, bytes: &[u8]) -> anyhow::Result<(String, Written)> {
    let hash = content_hash(bytes);
    let name = format!("{stem}.{hash}.{ext}");
    let (br, gz) = (brotli(bytes)?, gzip(bytes)?);
    std::fs::write(dir.join(&name), bytes)?;
    std::fs::write(dir.join(format!("{name}.br")), &br)?;
    std::fs::write(dir.join(format!("{name}.gz")), &gz)?;
    Ok((hash, Written { name, raw: bytes.len(), brotli: br.len(), gzip: gz.len() }))
}

pub fn assemble(args: SiteArgs) -> anyhow::Result<()> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()));
    let js = read(&args.bindgen.join("sagedeck.js"))?;
    let wasm = read(&args.bindgen.join("sagedeck_bg.wasm"))?;
    let css = read(&args.style)?;
    let pkg = args.out.join("pkg");
    std::fs::create_dir_all(&pkg)?;
    // The previous build's files go: hashed names would pile up otherwise.
    for entry in std::fs::read_dir(&pkg)? {
        let path = entry?.path();
        if path.is_file() {
            std::fs::remove_file(path)?;
        }
    }
    let (js_hash, js_file) = write_hashed(&pkg, "sagedeck", "js", &js)?;
    let (wasm_hash, wasm_file) = write_hashed(&pkg, "sagedeck", "wasm", &wasm)?;
    let (css_hash, css_file) = write_hashed(&pkg, "sagedeck", "css", &css)?;
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
    std::fs::write(&hash_file, format!("js: {js_hash}\nwasm: {wasm_hash}\ncss: {css_hash}\n"))?;
    for f in [&js_file, &wasm_file, &css_file] {
        println!("{:<36} {:>10} bytes · brotli {:>9} · gzip {:>9}", f.name, f.raw, f.brotli, f.gzip);
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
}

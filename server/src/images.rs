//! Bounded image decoding. An image's header says how big it is; the file
//! may be small and the image huge (a decoder bomb), or made of hundreds of
//! thousands of empty chunks that keep a decoder busy for a minute. Before
//! any pixel is decoded, [`plan`] reads the structure and the header and
//! refuses what cannot be a real image (no frame or no scan, no pixel data, a
//! chunk flood), what is too large (over [`MAX_SIDE`] a side), and what would
//! cost far more memory than its size justifies (over [`MAX_EXPANSION`]
//! times its bytes, beyond [`FREE_BYTES`]). [`DecodeBudget`] then bounds the
//! memory of the decodes running at once (a budget in bytes, not a count),
//! and [`decode_rgb`] caps the decoder's own allocations to the plan.
//!
//! Files are read with [`read_regular_file`]: regular files only (never a
//! FIFO, device or socket, which could block or read forever), bounded in
//! size, symlinks followed only when they stay inside the allowed roots.

use app::ApiError;
use image::{ImageDecoder, ImageFormat, ImageReader, RgbImage};
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Images wider or taller than this are refused before decoding.
pub const MAX_SIDE: u32 = 16_384;
/// Decoded bytes an image may need per byte of its file...
pub const MAX_EXPANSION: u64 = 1024;
/// ...beyond this much, which any image may use (a 4,096 × 4,096 RGBA photo).
pub const FREE_BYTES: u64 = 64 * 1024 * 1024;
/// A PNG may hold this many chunks, plus one per KB of file: real encoders
/// write chunks of kilobytes; a chunk flood is 12-byte empty ones.
const PNG_BASE_CHUNKS: usize = 64;

/// What decoding an image will take, from its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    /// The decoder's output plus the RGB copy made from it.
    pub bytes: u64,
}

impl Plan {
    pub fn format_name(&self) -> &'static str {
        if self.format == ImageFormat::Jpeg { "JPEG" } else { "PNG" }
    }
}

/// Reads the structure and header of JPEG or PNG bytes and says what
/// decoding them will cost, or why they are refused.
pub fn plan(bytes: &[u8]) -> Result<Plan, String> {
    if bytes.is_empty() {
        return Err("the request body is empty: send the image's bytes".into());
    }
    let format = match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Jpeg | ImageFormat::Png)) => f,
        Ok(other) => return Err(format!("{other:?} images are not supported: send a JPEG or a PNG")),
        Err(_) => return Err("the bytes are not a JPEG or PNG image (unrecognised signature)".into()),
    };
    // The structure first, read here: the size it declares, whether it holds
    // image data, and no chunk flood (the PNG decoder would read every chunk
    // before the first IDAT just to report the size).
    let (width, height, has_data) = match format {
        ImageFormat::Jpeg => jpeg_structure(bytes)?,
        _ => png_structure(bytes)?,
    };
    let name = if format == ImageFormat::Jpeg { "JPEG" } else { "PNG" };
    if width == 0 || height == 0 {
        return Err(format!("the {name} has no pixels (its header says {width}×{height})"));
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(format!("the image is {width}×{height}: larger than {MAX_SIDE}×{MAX_SIDE} pixels"));
    }
    if !has_data {
        return Err(format!("the {name} has no image data (its header is not followed by any pixels)"));
    }
    let reader = ImageReader::with_format(Cursor::new(bytes), format);
    let decoder = reader.into_decoder().map_err(|e| match e {
        image::ImageError::IoError(e) => format!("the {name} is truncated ({e})"),
        other => format!("the {name} cannot be decoded: {other}"),
    })?;
    let bytes_needed = decoder.total_bytes() + u64::from(width) * u64::from(height) * 3;
    let allowed = FREE_BYTES.max(MAX_EXPANSION * bytes.len() as u64);
    if bytes_needed > allowed {
        return Err(format!(
            "the image declares {width}×{height} pixels ({} MB to decode) in a file of {} bytes: more than {MAX_EXPANSION} times its size, \
             so it is refused as a decompression bomb",
            bytes_needed / 1_000_000,
            bytes.len()
        ));
    }
    Ok(Plan { format, width, height, bytes: bytes_needed })
}

/// A JPEG's frame size and whether a scan with data follows its headers (a
/// header alone decodes to a grey picture). Truncated files are refused.
fn jpeg_structure(bytes: &[u8]) -> Result<(u32, u32, bool), String> {
    if !jpeg_is_complete(bytes) {
        return Err("the JPEG is truncated: it has no end-of-image marker (was the upload cut off?)".into());
    }
    let (mut at, mut size) = (2usize, None);
    loop {
        // Markers may be padded with any number of 0xFF bytes.
        while at + 1 < bytes.len() && bytes[at] == 0xFF && bytes[at + 1] == 0xFF {
            at += 1;
        }
        if at + 2 > bytes.len() || bytes[at] != 0xFF {
            return Err("the JPEG is damaged: its segments do not follow each other".into());
        }
        let marker = bytes[at + 1];
        match marker {
            0xD9 => {
                let (w, h) = size.ok_or("the JPEG has no frame header (no size)")?;
                return Ok((w, h, false));
            }
            0xD0..=0xD7 | 0x01 => {
                at += 2;
                continue;
            }
            _ if at + 4 > bytes.len() => return Err("the JPEG is truncated: a segment runs past the end of the file".into()),
            _ => {}
        }
        let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        if length < 2 || at + 2 + length > bytes.len() {
            return Err("the JPEG is truncated: a segment runs past the end of the file".into());
        }
        if matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) && length >= 7 {
            let height = u32::from(u16::from_be_bytes([bytes[at + 5], bytes[at + 6]]));
            let width = u32::from(u16::from_be_bytes([bytes[at + 7], bytes[at + 8]]));
            size = Some((width, height));
        }
        if marker == 0xDA {
            let (w, h) = size.ok_or("the JPEG has a scan but no frame header (no size)")?;
            // The entropy-coded data follows the scan header, before the end marker.
            let data = bytes.len().saturating_sub(at + 2 + length + 2);
            return Ok((w, h, data > 0));
        }
        at += 2 + length;
    }
}

/// A PNG's size (IHDR), whether it has image data (IDAT), and no flood of chunks.
fn png_structure(bytes: &[u8]) -> Result<(u32, u32, bool), String> {
    if bytes.len() < 33 || &bytes[12..16] != b"IHDR" {
        return Err("the PNG is truncated or damaged: it has no header chunk (IHDR)".into());
    }
    let width = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let height = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    let limit = PNG_BASE_CHUNKS + bytes.len() / 1024;
    let (mut at, mut chunks, mut data) = (8usize, 0usize, 0u64);
    while at + 8 <= bytes.len() {
        let length = u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let kind = &bytes[at + 4..at + 8];
        chunks += 1;
        if chunks > limit {
            return Err(format!("the PNG has more than {limit} chunks for its {} bytes: refused as a chunk flood", bytes.len()));
        }
        if kind == b"IDAT" {
            data += length as u64;
        }
        if kind == b"IEND" {
            break;
        }
        at = at.saturating_add(12).saturating_add(length);
    }
    Ok((width, height, data > 0))
}

/// A JPEG ends with FF D9, possibly followed by padding some writers add.
pub fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(64)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Decodes planned bytes to RGB, the decoder's allocations capped to the plan.
pub fn decode_rgb(bytes: &[u8], plan: &Plan) -> Result<RgbImage, String> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), plan.format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(plan.bytes + 1024 * 1024);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => format!("the image needs more memory to decode than its header declares ({} MB)", plan.bytes / 1_000_000),
        image::ImageError::IoError(e) => format!("the {} is truncated ({e})", plan.format_name()),
        other => format!("the {} cannot be decoded: {other}", plan.format_name()),
    })?;
    // Alpha is dropped as PIL's convert("RGB") drops it, the seeds' handler.
    Ok(image.into_rgb8())
}

/// Plans and decodes in one go (files of a dataset, thumbnails).
pub fn decode_bytes(bytes: &[u8]) -> Result<(RgbImage, Plan), String> {
    let plan = plan(bytes)?;
    Ok((decode_rgb(bytes, &plan)?, plan))
}

/// The memory the decodes running at once may use, in MiB permits.
#[derive(Clone)]
pub struct DecodeBudget {
    permits: Arc<Semaphore>,
    mib: u32,
    /// How long a decode waits for room before it is refused with 429.
    pub wait: Duration,
}

impl DecodeBudget {
    pub fn new(mib: u32, wait: Duration) -> Self {
        DecodeBudget { permits: Arc::new(Semaphore::new(mib as usize)), mib, wait }
    }

    pub fn mib(&self) -> u32 {
        self.mib
    }

    /// Room for one plan's decode, held until the permit is dropped (after
    /// the decode really ended, even if its caller went away).
    pub async fn reserve(&self, plan: &Plan) -> Result<OwnedSemaphorePermit, ApiError> {
        let need = plan.bytes.div_ceil(1024 * 1024).max(1);
        if need > u64::from(self.mib) {
            return Err(ApiError::TooLarge(format!(
                "the {}×{} image needs {need} MB to decode; this console decodes at most {} MB at once",
                plan.width, plan.height, self.mib
            )));
        }
        match tokio::time::timeout(self.wait, self.permits.clone().acquire_many_owned(need as u32)).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(ApiError::Internal("the decoder is shut down".into())),
            Err(_) => Err(ApiError::Throttled(format!(
                "the decoders are using their {} MB; this {need} MB image waited {} s for room: retry after a moment",
                self.mib,
                self.wait.as_secs()
            ))),
        }
    }
}

/// Reads a file only if it is a regular file of at most `max_bytes`, opened
/// without blocking (a FIFO swapped in after the check cannot hang the
/// reader) and, when it is a symlink, only if its target lies inside one of
/// `roots`. `roots` empty: symlinks are refused.
pub fn read_regular_file(path: &Path, max_bytes: u64, roots: &[PathBuf]) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let link = std::fs::symlink_metadata(path).map_err(|e| format!("unreadable: {e}"))?;
    if link.file_type().is_symlink() {
        // Where it leads is not said: that would name a file outside the roots.
        let target = path.canonicalize().map_err(|_| "a link that leads nowhere readable".to_string())?;
        if !roots.iter().any(|r| target.starts_with(r)) {
            return Err("a link that leads outside the folders this console reads from".into());
        }
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("unreadable: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("unreadable: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file (a FIFO, device or socket is never read)".into());
    }
    if meta.len() > max_bytes {
        return Err(format!("{} bytes: larger than the {max_bytes} bytes allowed here", meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // One byte more than allowed tells a file that grew while being read.
    file.take(max_bytes + 1).read_to_end(&mut bytes).map_err(|e| format!("unreadable: {e}"))?;
    if bytes.len() as u64 > max_bytes {
        return Err(format!("larger than the {max_bytes} bytes allowed here"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        image::RgbImage::new(width, height).write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
        out
    }

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 7])).write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg).unwrap();
        out
    }

    /// Sets a PNG's IHDR width and height (and its CRC).
    fn png_declaring(mut bytes: Vec<u8>, width: u32, height: u32) -> Vec<u8> {
        bytes[16..20].copy_from_slice(&width.to_be_bytes());
        bytes[20..24].copy_from_slice(&height.to_be_bytes());
        let crc = crc32fast::hash(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    #[test]
    fn real_images_plan_and_decode() {
        for bytes in [png(64, 48), jpeg(64, 48)] {
            let (rgb, plan) = decode_bytes(&bytes).unwrap();
            assert_eq!((rgb.width(), rgb.height(), plan.width, plan.height), (64, 48, 64, 48));
            assert!(plan.bytes >= 64 * 48 * 3, "{plan:?}");
        }
    }

    #[test]
    fn bombs_floods_and_empty_images_are_refused_before_decoding() {
        // A small PNG declaring a huge canvas.
        let bomb = png_declaring(png(8, 8), 16_000, 16_000);
        assert!(plan(&bomb).unwrap_err().contains("decompression bomb"), "{:?}", plan(&bomb));
        let wide = png_declaring(png(8, 8), 20_000, 10);
        assert!(plan(&wide).unwrap_err().contains("larger than 16384"));
        // A JPEG of headers only: frame and tables, no scan.
        let full = jpeg(32, 32);
        let sos = full.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        let mut headers_only = full[..sos].to_vec();
        headers_only.extend_from_slice(&[0xFF, 0xD9]);
        assert!(plan(&headers_only).unwrap_err().contains("no image data"), "{:?}", plan(&headers_only));
        // A PNG flooded with empty chunks before its data.
        let small = png(8, 8);
        let mut flood = small[..33].to_vec();
        for _ in 0..20_000 {
            flood.extend_from_slice(&[0, 0, 0, 0, b't', b'E', b'X', b't', 0, 0, 0, 0]);
        }
        flood.extend_from_slice(&small[33..]);
        assert!(plan(&flood).unwrap_err().contains("chunk flood"));
        // A PNG without IDAT.
        let iend = small.windows(4).position(|w| w == b"IEND").unwrap() - 4;
        let idat = small.windows(4).position(|w| w == b"IDAT").unwrap() - 4;
        let mut no_data = small[..idat].to_vec();
        no_data.extend_from_slice(&small[iend..]);
        assert!(plan(&no_data).unwrap_err().contains("no image data"));
        assert!(plan(b"").is_err() && plan(b"GIF89a....").is_err());
    }

    #[tokio::test]
    async fn the_budget_is_shared_and_refuses_what_can_never_fit() {
        let budget = DecodeBudget::new(10, Duration::from_millis(100));
        let six = Plan { format: ImageFormat::Png, width: 1, height: 1, bytes: 6 * 1024 * 1024 };
        let held = budget.reserve(&six).await.unwrap();
        assert_eq!(budget.reserve(&six).await.unwrap_err().status(), 429, "no room while the first holds 6 of 10");
        drop(held);
        assert!(budget.reserve(&six).await.is_ok());
        let huge = Plan { bytes: 11 * 1024 * 1024, ..six };
        assert_eq!(budget.reserve(&huge).await.unwrap_err().status(), 413);
    }

    #[test]
    fn only_regular_files_within_bounds_and_roots_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let file = root.join("a.jpg");
        std::fs::write(&file, b"12345").unwrap();
        assert_eq!(read_regular_file(&file, 10, &[root.clone()]).unwrap(), b"12345");
        assert!(read_regular_file(&file, 4, &[root.clone()]).unwrap_err().contains("larger"));
        // A FIFO is refused at once, not waited on.
        let fifo = root.join("f.jpg");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        assert!(read_regular_file(&fifo, 10, &[root.clone()]).unwrap_err().contains("not a regular file"));
        // A link to a device, and a link out of the roots.
        std::os::unix::fs::symlink("/dev/zero", root.join("zero.jpg")).unwrap();
        assert!(read_regular_file(&root.join("zero.jpg"), 10, &[root.clone()]).unwrap_err().contains("outside"));
        assert!(read_regular_file(&root.join("zero.jpg"), 10, &[PathBuf::from("/")]).unwrap_err().contains("not a regular file"));
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("out.jpg")).unwrap();
        assert!(read_regular_file(&root.join("out.jpg"), 10, &[root.clone()]).unwrap_err().contains("outside"));
        // A link inside the roots is followed.
        std::os::unix::fs::symlink(&file, root.join("in.jpg")).unwrap();
        assert_eq!(read_regular_file(&root.join("in.jpg"), 10, &[root]).unwrap(), b"12345");
    }
}

//! S3: locations, uploads (one PutObject for small files, multipart with
//! several parts in flight for large ones, resumable), downloads with a size
//! cap, and the ETag arithmetic that tells an unchanged file without reading
//! the object back.

use crate::aws::from_sdk;
use app::ApiError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use base64::Engine;
use futures_util::{StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Files from this size up go in parts; each part but the last is at least
/// this big (S3's minimum is 5 MiB).
pub const PART_SIZE: u64 = 8 * 1024 * 1024;
/// S3 allows at most 10,000 parts per object.
const MAX_PARTS: u64 = 10_000;
/// Parts of one file sent at once.
pub const PARTS_IN_FLIGHT: usize = 4;
/// The object metadata key holding the file's SHA-256, for buckets whose
/// ETags are not MD5s (SSE-KMS).
pub const SHA256_METADATA: &str = "sagedeck-sha256";

/// `s3://bucket/key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Uri {
    pub bucket: String,
    pub key: String,
}

impl S3Uri {
    pub fn parse(uri: &str) -> Result<S3Uri, ApiError> {
        if !app::names::is_s3_uri(uri) {
            return Err(ApiError::Invalid(format!("{uri:?} is not an S3 location (s3://bucket/key)")));
        }
        let rest = &uri["s3://".len()..];
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        Ok(S3Uri { bucket: bucket.to_string(), key: key.trim_start_matches('/').to_string() })
    }

    /// The key `relative` under this one as a folder.
    pub fn join(&self, relative: &str) -> S3Uri {
        let base = self.key.trim_end_matches('/');
        let key = if base.is_empty() { relative.to_string() } else { format!("{base}/{relative}") };
        S3Uri { bucket: self.bucket.clone(), key }
    }

    /// The key as a folder prefix (`prefix/`), for listing what is under it.
    pub fn folder(&self) -> String {
        let base = self.key.trim_end_matches('/');
        if base.is_empty() {
            String::new()
        } else {
            format!("{base}/")
        }
    }
}

impl std::fmt::Display for S3Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// The part size for a file: PART_SIZE, or larger (whole MiB) so the file
/// fits in S3's 10,000 parts.
pub fn part_size(file_size: u64) -> u64 {
    let needed = file_size.div_ceil(MAX_PARTS);
    let mib = 1024 * 1024;
    PART_SIZE.max(needed.div_ceil(mib) * mib)
}

/// (offset, length) of each part, numbered from 1 in order.
pub fn parts(file_size: u64, part_size: u64) -> Vec<(u64, u64)> {
    (0..file_size.div_ceil(part_size).max(1)).map(|i| (i * part_size, part_size.min(file_size - i * part_size))).collect()
}

/// What S3 reports as the ETag of `bytes` uploaded as Sagedeck uploads them:
/// the MD5 in hex for one PutObject; for a multipart upload, the MD5 of the
/// parts' binary MD5s, a dash and the part count.
pub fn etag_of(bytes: &[u8]) -> String {
    let size = bytes.len() as u64;
    if size < PART_SIZE {
        return hex(&Md5::digest(bytes));
    }
    let size_of_part = part_size(size);
    let plan = parts(size, size_of_part);
    let mut digests = Md5::new();
    for (offset, len) in &plan {
        digests.update(Md5::digest(&bytes[*offset as usize..(*offset + *len) as usize]));
    }
    format!("{}-{}", hex(&digests.finalize()), plan.len())
}

/// Whether an ETag is one [`etag_of`] can match (SSE-KMS objects have others).
pub fn is_md5_etag(etag: &str) -> bool {
    let (hash, count) = match etag.split_once('-') {
        Some((h, n)) => (h, Some(n)),
        None => (etag, None),
    };
    hash.len() == 32 && hash.bytes().all(|b| b.is_ascii_hexdigit()) && count.is_none_or(|n| n.parse::<u32>().is_ok())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn md5_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes))
}

/// What an object under a listed prefix is: its size and ETag (quotes dropped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectFacts {
    pub size: u64,
    pub etag: String,
}

/// Every object under `prefix` (ListObjectsV2, all pages): key → facts.
pub async fn list(client: &Client, bucket: &str, prefix: &str) -> Result<HashMap<String, ObjectFacts>, ApiError> {
    let mut pages = client.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    let mut out = HashMap::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| from_sdk("S3 ListObjectsV2", e))?;
        for object in page.contents() {
            if let Some(key) = object.key() {
                out.insert(
                    key.to_string(),
                    ObjectFacts { size: object.size().unwrap_or(0).max(0) as u64, etag: object.e_tag().unwrap_or_default().trim_matches('"').to_string() },
                );
            }
        }
    }
    Ok(out)
}

/// The SHA-256 Sagedeck stored with an object, if it did.
pub async fn stored_sha256(client: &Client, at: &S3Uri) -> Result<Option<String>, ApiError> {
    let head = client.head_object().bucket(&at.bucket).key(&at.key).send().await.map_err(|e| from_sdk("S3 HeadObject", e))?;
    Ok(head.metadata().and_then(|m| m.get(SHA256_METADATA)).cloned())
}

/// Puts a small object from memory (sourcedir.tar.gz, a model.tar.gz),
/// with Content-MD5 so S3 checks what it got.
pub async fn put(client: &Client, at: &S3Uri, bytes: Vec<u8>, content_type: &str) -> Result<(), ApiError> {
    if bytes.len() as u64 >= PART_SIZE {
        let done = AtomicU64::new(0);
        let cancel = AtomicBool::new(false);
        return upload_multipart_from(client, at, Source::Memory(Arc::new(bytes)), None, &done, &cancel, content_type, None)
            .await
            .map(|_| ())
            .map_err(UploadError::into_api);
    }
    let sha = hex(&sha2::Sha256::digest(&bytes));
    client
        .put_object()
        .bucket(&at.bucket)
        .key(&at.key)
        .content_type(content_type)
        .content_md5(md5_base64(&bytes))
        .metadata(SHA256_METADATA, sha)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .map_err(|e| from_sdk("S3 PutObject", e))?;
    Ok(())
}

pub async fn delete(client: &Client, at: &S3Uri) -> Result<(), ApiError> {
    client.delete_object().bucket(&at.bucket).key(&at.key).send().await.map_err(|e| from_sdk("S3 DeleteObject", e))?;
    Ok(())
}

/// Why an upload stopped.
#[derive(Debug)]
pub enum UploadError {
    Cancelled,
    Failed(ApiError),
}

impl UploadError {
    pub fn into_api(self) -> ApiError {
        match self {
            UploadError::Cancelled => ApiError::Conflict("the upload was cancelled".into()),
            UploadError::Failed(e) => e,
        }
    }
}

impl From<ApiError> for UploadError {
    fn from(e: ApiError) -> Self {
        UploadError::Failed(e)
    }
}

enum Source<'a> {
    File(&'a Path),
    Memory(Arc<Vec<u8>>),
}

impl Source<'_> {
    async fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>, ApiError> {
        match self {
            Source::Memory(bytes) => Ok(bytes[offset as usize..(offset + len) as usize].to_vec()),
            Source::File(path) => {
                let io = |e: std::io::Error| ApiError::Internal(format!("cannot read {}: {e}", path.display()));
                let mut file = tokio::fs::File::open(path).await.map_err(io)?;
                file.seek(std::io::SeekFrom::Start(offset)).await.map_err(io)?;
                let mut buffer = vec![0u8; len as usize];
                file.read_exact(&mut buffer).await.map_err(io)?;
                Ok(buffer)
            }
        }
    }
}

/// Uploads one file to `at`: one PutObject under PART_SIZE, else a multipart
/// upload with PARTS_IN_FLIGHT parts at once. `resume` continues a multipart
/// upload begun before (ListParts says which parts S3 has; those are not sent
/// again); `on_started` is told a new multipart upload's id before its first
/// part, so a restart can resume it. `done` counts the bytes S3 has accepted,
/// `cancel` stops between parts (the multipart upload is left for the caller
/// to abort or resume). `sha256` is stored as object metadata.
#[allow(clippy::too_many_arguments)]
pub async fn upload_file(
    client: &Client,
    at: &S3Uri,
    path: &Path,
    size: u64,
    sha256: &str,
    resume: Option<String>,
    on_started: impl AsyncFnOnce(&str),
    done: &AtomicU64,
    cancel: &AtomicBool,
) -> Result<(), UploadError> {
    if cancel.load(Ordering::Relaxed) {
        return Err(UploadError::Cancelled);
    }
    if size < PART_SIZE {
        let bytes = Source::File(path).read(0, size).await?;
        client
            .put_object()
            .bucket(&at.bucket)
            .key(&at.key)
            .content_md5(md5_base64(&bytes))
            .metadata(SHA256_METADATA, sha256)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| from_sdk("S3 PutObject", e))?;
        done.fetch_add(size, Ordering::Relaxed);
        return Ok(());
    }
    let id = match resume {
        Some(id) => id,
        None => {
            let id = create_multipart(client, at, "application/octet-stream", Some(sha256)).await?;
            on_started(&id).await;
            id
        }
    };
    upload_multipart_from(client, at, Source::File(path), Some(id), done, cancel, "application/octet-stream", Some(sha256)).await?;
    Ok(())
}

async fn create_multipart(client: &Client, at: &S3Uri, content_type: &str, sha256: Option<&str>) -> Result<String, ApiError> {
    let mut request = client.create_multipart_upload().bucket(&at.bucket).key(&at.key).content_type(content_type);
    if let Some(sha) = sha256 {
        request = request.metadata(SHA256_METADATA, sha);
    }
    let created = request.send().await.map_err(|e| from_sdk("S3 CreateMultipartUpload", e))?;
    created.upload_id().map(str::to_string).ok_or_else(|| ApiError::Upstream("S3 CreateMultipartUpload answered no UploadId".into()))
}

/// The parts S3 already has for a multipart upload: number → (ETag, size).
async fn uploaded_parts(client: &Client, at: &S3Uri, id: &str) -> Result<HashMap<i32, (String, u64)>, ApiError> {
    let mut out = HashMap::new();
    let mut marker: Option<String> = None;
    loop {
        let page = client
            .list_parts()
            .bucket(&at.bucket)
            .key(&at.key)
            .upload_id(id)
            .set_part_number_marker(marker.clone())
            .send()
            .await
            .map_err(|e| from_sdk("S3 ListParts", e))?;
        for part in page.parts() {
            if let (Some(n), Some(etag)) = (part.part_number(), part.e_tag()) {
                out.insert(n, (etag.to_string(), part.size().unwrap_or(0).max(0) as u64));
            }
        }
        match (page.is_truncated(), page.next_part_number_marker()) {
            (Some(true), Some(next)) => marker = Some(next.to_string()),
            _ => return Ok(out),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn upload_multipart_from(
    client: &Client,
    at: &S3Uri,
    source: Source<'_>,
    id: Option<String>,
    done: &AtomicU64,
    cancel: &AtomicBool,
    content_type: &str,
    sha256: Option<&str>,
) -> Result<(), UploadError> {
    let size = match &source {
        Source::Memory(bytes) => bytes.len() as u64,
        Source::File(path) => tokio::fs::metadata(path).await.map_err(|e| ApiError::Internal(format!("cannot read {}: {e}", path.display())))?.len(),
    };
    let (id, have) = match id {
        Some(id) => match uploaded_parts(client, at, &id).await {
            Ok(have) => (id, have),
            // Gone (aborted, expired) or unreadable: start the file over.
            Err(e) => {
                tracing::warn!(object = %at, error = %e.message(), "the parts of an interrupted upload cannot be listed; sending the file again");
                let _ = abort_multipart(client, at, &id).await;
                (create_multipart(client, at, content_type, sha256).await?, HashMap::new())
            }
        },
        None => (create_multipart(client, at, content_type, sha256).await?, HashMap::new()),
    };
    let plan = parts(size, part_size(size));
    let source = &source;
    let id_ref = id.as_str();
    let completed: Vec<CompletedPart> = futures_util::stream::iter(plan.into_iter().enumerate())
        .map(|(i, (offset, len))| {
            let number = i as i32 + 1;
            let have = have.get(&number).filter(|(_, s)| *s == len).map(|(etag, _)| etag.clone());
            async move {
                if let Some(etag) = have {
                    done.fetch_add(len, Ordering::Relaxed);
                    return Ok(CompletedPart::builder().part_number(number).e_tag(etag).build());
                }
                if cancel.load(Ordering::Relaxed) {
                    return Err(UploadError::Cancelled);
                }
                let bytes = source.read(offset, len).await?;
                let sent = client
                    .upload_part()
                    .bucket(&at.bucket)
                    .key(&at.key)
                    .upload_id(id_ref)
                    .part_number(number)
                    .content_md5(md5_base64(&bytes))
                    .body(ByteStream::from(bytes))
                    .send()
                    .await
                    .map_err(|e| from_sdk("S3 UploadPart", e))?;
                done.fetch_add(len, Ordering::Relaxed);
                Ok(CompletedPart::builder().part_number(number).set_e_tag(sent.e_tag().map(str::to_string)).build())
            }
        })
        .buffer_unordered(PARTS_IN_FLIGHT)
        .try_collect()
        .await?;
    let mut completed = completed;
    completed.sort_by_key(|p| p.part_number());
    client
        .complete_multipart_upload()
        .bucket(&at.bucket)
        .key(&at.key)
        .upload_id(&id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build())
        .send()
        .await
        .map_err(|e| from_sdk("S3 CompleteMultipartUpload", e))?;
    Ok(())
}

/// Gives up a multipart upload so S3 drops its parts.
pub async fn abort_multipart(client: &Client, at: &S3Uri, id: &str) -> Result<(), ApiError> {
    client
        .abort_multipart_upload()
        .bucket(&at.bucket)
        .key(&at.key)
        .upload_id(id)
        .send()
        .await
        .map_err(|e| from_sdk("S3 AbortMultipartUpload", e))?;
    Ok(())
}

/// Downloads an object into `dest`, refusing one over `max_bytes` (checked
/// before and while reading). Returns its size.
pub async fn download(client: &Client, at: &S3Uri, dest: &Path, max_bytes: u64) -> Result<u64, ApiError> {
    let object = client.get_object().bucket(&at.bucket).key(&at.key).send().await.map_err(|e| from_sdk("S3 GetObject", e))?;
    let declared = object.content_length().unwrap_or(0).max(0) as u64;
    let too_big = |n: u64| ApiError::TooLarge(format!("{at} is {n} bytes; the most Sagedeck downloads is {max_bytes}"));
    if declared > max_bytes {
        return Err(too_big(declared));
    }
    let io = |e: std::io::Error| ApiError::Internal(format!("cannot write {}: {e}", dest.display()));
    let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
    let mut body = object.body;
    let mut written = 0u64;
    while let Some(chunk) = body.try_next().await.map_err(|e| ApiError::Upstream(format!("S3 GetObject {at}: the download broke off: {e}")))? {
        written += chunk.len() as u64;
        if written > max_bytes {
            return Err(too_big(written));
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    Ok(written)
}

/// SHA-256 and S3 ETag of a file, read once (blocking: call off the async threads).
pub fn file_digests(path: &Path) -> std::io::Result<(String, String, u64)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let mut sha = sha2::Sha256::new();
    let single = size < PART_SIZE;
    let size_of_part = part_size(size);
    let mut whole = Md5::new();
    let mut of_parts = Md5::new();
    let mut part = Md5::new();
    let (mut in_part, mut parts_done) = (0u64, 0u64);
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        let mut chunk = &buffer[..n];
        sha.update(chunk);
        if single {
            whole.update(chunk);
            continue;
        }
        while !chunk.is_empty() {
            let take = ((size_of_part - in_part) as usize).min(chunk.len());
            part.update(&chunk[..take]);
            in_part += take as u64;
            chunk = &chunk[take..];
            if in_part == size_of_part {
                of_parts.update(std::mem::take(&mut part).finalize());
                parts_done += 1;
                in_part = 0;
            }
        }
    }
    let etag = if single {
        hex(&whole.finalize())
    } else {
        if in_part > 0 {
            of_parts.update(part.finalize());
            parts_done += 1;
        }
        format!("{}-{parts_done}", hex(&of_parts.finalize()))
    };
    Ok((hex(&sha.finalize()), etag, size))
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_split_into_bucket_and_key_and_join_as_folders() {
        let u = S3Uri::parse("s3://dogs/datasets/demo").unwrap();
        assert_eq!((u.bucket.as_str(), u.key.as_str()), ("dogs", "datasets/demo"));
        assert_eq!(u.join("train/001.Circle/0001.jpg").to_string(), "s3://dogs/datasets/demo/train/001.Circle/0001.jpg");
        assert_eq!(u.folder(), "datasets/demo/");
        let root = S3Uri::parse("s3://dogs").unwrap();
        assert_eq!((root.key.as_str(), root.folder().as_str()), ("", ""));
        assert_eq!(root.join("a.txt").key, "a.txt");
        assert_eq!(S3Uri::parse("dogs/x").unwrap_err().status(), 400);
    }

    #[test]
    fn parts_cover_the_file_and_stay_within_s3s_limits() {
        assert_eq!(parts(20, 8), vec![(0, 8), (8, 8), (16, 4)]);
        assert_eq!(parts(16, 8), vec![(0, 8), (8, 8)]);
        assert_eq!(part_size(100 * 1024 * 1024), PART_SIZE);
        // 200 GB: 8 MiB parts would be 23,842 of them; the size grows to fit 10,000.
        let huge = 200_000_000_000u64;
        let size = part_size(huge);
        assert!(size % (1024 * 1024) == 0 && huge.div_ceil(size) <= MAX_PARTS, "{size}");
    }

    /// The ETags S3 documents: MD5 hex for one PutObject, MD5-of-MD5s-N for
    /// a multipart upload (checked against the moto test that uploads for real).
    #[test]
    fn etags_are_md5s_or_md5s_of_parts() {
        assert_eq!(etag_of(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(etag_of(b"hello"), "5d41402abc4b2a76b9719d911017c592");
        let big = vec![7u8; (PART_SIZE + 5) as usize];
        let etag = etag_of(&big);
        assert!(etag.ends_with("-2") && is_md5_etag(&etag), "{etag}");
        let dir = tempfile::tempdir().unwrap();
        for bytes in [b"hello".to_vec(), big] {
            let path = dir.path().join("f");
            std::fs::write(&path, &bytes).unwrap();
            let (sha, etag, size) = file_digests(&path).unwrap();
            assert_eq!(etag, etag_of(&bytes));
            assert_eq!(size, bytes.len() as u64);
            assert_eq!(sha, hex(&sha2::Sha256::digest(&bytes)));
        }
        assert!(!is_md5_etag("not-an-md5"));
        assert!(!is_md5_etag("0123456789abcdef0123456789abcdeg"));
    }
}

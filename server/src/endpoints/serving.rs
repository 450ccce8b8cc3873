//! Serving a local artifact: decoding an upload into the model's input, and a
//! runtime of N replicas behind one bounded queue with dynamic batching.
//!
//! Each replica is an OS thread with its own copy of the weights (libtorch
//! forwards block, and a module is not shared between threads). Replicas take
//! requests from one queue: the first request is waited for; more are taken
//! while they are already there, or until `max_wait` has passed, up to
//! `max_batch`, and go through one forward pass together. A full queue is
//! refused at once (429), so a burst never piles up without bound.

use crate::training::model::Classifier;
use crate::training::pipeline::{resample_into, Crop};
use crate::training::trainer::{read_artifact, ArtifactMetadata, ARTIFACT_FORMAT};
use app::endpoints::{Batching, ImageFacts};
use image::ImageReader;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tch::{Device, Kind, Tensor};

/// The decoded, resized and normalised input of one image.
#[derive(Debug)]
pub struct Prepared {
    pub pixels: Vec<f32>,
    pub facts: ImageFacts,
    pub took: Duration,
}

/// Decodes JPEG or PNG bytes (any colour type: grayscale, alpha, CMYK,
/// 16-bit) and prepares them as the training pipeline's evaluation
/// transform does: squash to `size`×`size`, ImageNet normalisation, CHW.
/// Bounded as [`crate::images`] says.
pub fn prepare(bytes: &[u8], size: usize) -> Result<Prepared, String> {
    let plan = crate::images::plan(bytes)?;
    prepare_planned(bytes, &plan, size)
}

/// [`prepare`] for bytes already planned (the invoke route reserves the
/// plan's memory first).
pub fn prepare_planned(bytes: &[u8], plan: &crate::images::Plan, size: usize) -> Result<Prepared, String> {
    let started = Instant::now();
    let rgb = crate::images::decode_rgb(bytes, plan)?;
    let facts = ImageFacts {
        format: plan.format_name().into(),
        width: plan.width,
        height: plan.height,
        color: color_of(bytes, plan),
        bytes: bytes.len(),
    };
    let (w, h) = rgb.dimensions();
    let mut pixels = vec![0f32; 3 * size * size];
    resample_into(&rgb, Crop { x: 0.0, y: 0.0, w: w as f32, h: h as f32 }, false, size, &mut pixels);
    Ok(Prepared { pixels, facts, took: started.elapsed() })
}

/// The colour type the file declares (Rgb8, La8, Rgba16…), for the Test panel.
fn color_of(bytes: &[u8], plan: &crate::images::Plan) -> String {
    use image::ImageDecoder;
    ImageReader::with_format(Cursor::new(bytes), plan.format)
        .into_decoder()
        .map(|d| format!("{:?}", d.color_type()))
        .unwrap_or_default()
}

/// What a deployed artifact is: read once from its metadata.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    pub dir: PathBuf,
    pub metadata: ArtifactMetadata,
    pub device: Device,
}

impl ModelInfo {
    pub fn read(dir: &Path) -> Result<ModelInfo, String> {
        let metadata = read_artifact(dir)
            .ok_or_else(|| format!("{} has no readable metadata.json: is it a completed job's artifact?", dir.display()))?;
        if metadata.format != ARTIFACT_FORMAT {
            return Err(format!("artifact format {:?} is not {ARTIFACT_FORMAT:?}", metadata.format));
        }
        if !dir.join("model.safetensors").is_file() {
            return Err(format!("{} has no model.safetensors", dir.display()));
        }
        Ok(ModelInfo { dir: dir.to_path_buf(), metadata, device: crate::training::trainer::device() })
    }

    pub fn size(&self) -> usize {
        self.metadata.input_size as usize
    }

    /// A fresh copy of the weights in evaluation mode.
    pub fn load(&self) -> Result<Classifier, String> {
        let mut model = Classifier::new(self.metadata.architecture, self.metadata.classes.len() as i64, self.device);
        model.load(&self.dir.join("model.safetensors")).map_err(|e| e.to_string())?;
        Ok(model)
    }
}

/// Runs a batch of prepared images through `model` without gradients:
/// one row of logits per image.
pub fn forward(model: &Classifier, pixels: &[f32], images: usize, size: usize) -> Result<Vec<Vec<f32>>, String> {
    let classes = model.classes as usize;
    let logits = tch::no_grad(|| -> Result<Vec<f32>, tch::TchError> {
        let input = Tensor::f_from_slice(pixels)?.f_view([images as i64, 3, size as i64, size as i64])?.f_to_device(model.device)?;
        let out = model.forward_t(&input, false).f_to_kind(Kind::Float)?.f_to_device(Device::Cpu)?.f_contiguous()?;
        Vec::<f32>::try_from(out.f_view([-1])?)
    })
    .map_err(|e| format!("libtorch: {e}"))?;
    Ok(logits.chunks(classes).map(<[f32]>::to_vec).collect())
}

/// The answer for one request.
#[derive(Debug)]
pub struct Scored {
    pub logits: Vec<f32>,
    pub forward: Duration,
    pub batch_size: u32,
}

struct Request {
    pixels: Vec<f32>,
    reply: tokio::sync::oneshot::Sender<Result<Scored, String>>,
}

/// Why a request was not taken.
#[derive(Debug, PartialEq)]
pub enum Refused {
    QueueFull { capacity: usize },
    Stopped,
}

/// N replicas behind one bounded queue. The count can change while it
/// serves ([`Runtime::scale_to`]): auto-scaling adds replicas with their own
/// weights and stops the newest ones when it scales in.
pub struct Runtime {
    pub info: Arc<ModelInfo>,
    pub batching: Batching,
    /// The endpoint's model version this runtime serves (its answers carry it).
    pub version: u32,
    name: String,
    queue: SyncSender<Request>,
    receiver: Arc<Mutex<Receiver<Request>>>,
    queued: Arc<AtomicUsize>,
    /// One stop flag per live replica, oldest first.
    replicas: Mutex<Vec<Arc<AtomicBool>>>,
}

/// How often an idle replica looks at its stop flag.
const STOP_CHECK: Duration = Duration::from_millis(200);

impl Runtime {
    /// Loads `instances` copies of the weights and starts one thread each.
    /// Blocking: call from `spawn_blocking`.
    pub fn start(name: &str, info: ModelInfo, instances: usize, batching: Batching) -> Result<Runtime, String> {
        let (queue, receiver) = sync_channel::<Request>(batching.queue_capacity as usize);
        let runtime = Runtime {
            info: Arc::new(info),
            batching,
            version: 1,
            name: name.to_string(),
            queue,
            receiver: Arc::new(Mutex::new(receiver)),
            queued: Arc::new(AtomicUsize::new(0)),
            replicas: Mutex::new(Vec::new()),
        };
        runtime.scale_to(instances)?;
        Ok(runtime)
    }

    /// The same runtime, labelled as serving `version`.
    pub fn versioned(mut self, version: u32) -> Runtime {
        self.version = version;
        self
    }

    /// Replicas serving now.
    pub fn instances(&self) -> usize {
        self.replicas.lock().expect("replicas").len()
    }

    /// Adds replicas (each loads its own weights and answers one warm-up
    /// image first, so a new replica takes requests only once it can answer
    /// them quickly, and weights that cannot run are refused here) or stops the newest
    /// ones (each finishes the batch it holds). Blocking when it adds.
    pub fn scale_to(&self, instances: usize) -> Result<(), String> {
        let mut replicas = self.replicas.lock().expect("replicas");
        while replicas.len() > instances {
            if let Some(stop) = replicas.pop() {
                stop.store(true, Ordering::SeqCst);
            }
        }
        let size = self.info.size();
        while replicas.len() < instances {
            let model = self.info.load()?;
            // libtorch's first forward pass allocates and plans; pay it here.
            forward(&model, &vec![0f32; 3 * size * size], 1, size).map_err(|e| format!("the model cannot answer a warm-up image: {e}"))?;
            let stop = Arc::new(AtomicBool::new(false));
            let (receiver, queued, flag, batching) = (self.receiver.clone(), self.queued.clone(), stop.clone(), self.batching);
            let span = tracing::info_span!("replica", endpoint = %self.name, replica = replicas.len());
            std::thread::Builder::new()
                .name(format!("endpoint-{}-{}", self.name, replicas.len()))
                .spawn(move || span.in_scope(|| replica(model, &receiver, &queued, &flag, size, batching)))
                .map_err(|e| format!("cannot start a replica thread: {e}"))?;
            replicas.push(stop);
        }
        Ok(())
    }

    /// Queues one prepared image; the answer arrives on the returned channel.
    pub fn submit(&self, pixels: Vec<f32>) -> Result<tokio::sync::oneshot::Receiver<Result<Scored, String>>, Refused> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queued.fetch_add(1, Ordering::SeqCst);
        match self.queue.try_send(Request { pixels, reply }) {
            Ok(()) => Ok(answer),
            Err(e) => {
                self.queued.fetch_sub(1, Ordering::SeqCst);
                Err(match e {
                    TrySendError::Full(_) => Refused::QueueFull { capacity: self.batching.queue_capacity as usize },
                    TrySendError::Disconnected(_) => Refused::Stopped,
                })
            }
        }
    }

    /// Requests waiting for a replica.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }
}

/// One replica's loop; it ends when the runtime (the queue's sender) is dropped.
fn replica(model: Classifier, receiver: &Mutex<Receiver<Request>>, queued: &AtomicUsize, stop: &AtomicBool, size: usize, batching: Batching) {
    let max_batch = batching.max_batch.max(1) as usize;
    let max_wait = Duration::from_millis(u64::from(batching.max_wait_ms));
    loop {
        let batch = {
            // Holding the lock while a batch forms keeps batches whole; the
            // other replicas take the next one.
            let Ok(receiver) = receiver.lock() else { return };
            let first = loop {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                match receiver.recv_timeout(STOP_CHECK) {
                    Ok(r) => break r,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            };
            let deadline = Instant::now() + max_wait;
            let mut batch = vec![first];
            while batch.len() < max_batch {
                let next = match receiver.try_recv() {
                    Ok(r) => Some(r),
                    Err(_) if max_wait.is_zero() => None,
                    Err(_) => match receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                        Ok(r) => Some(r),
                        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => None,
                    },
                };
                match next {
                    Some(r) => batch.push(r),
                    None => break,
                }
            }
            batch
        };
        queued.fetch_sub(batch.len(), Ordering::SeqCst);
        let n = batch.len();
        let mut pixels = Vec::with_capacity(n * 3 * size * size);
        for r in &batch {
            pixels.extend_from_slice(&r.pixels);
        }
        let started = Instant::now();
        let result = forward(&model, &pixels, n, size);
        let took = started.elapsed();
        match result {
            Ok(rows) => {
                for (request, logits) in batch.into_iter().zip(rows) {
                    let _ = request.reply.send(Ok(Scored { logits, forward: took, batch_size: n as u32 }));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "a local endpoint's forward pass failed");
                for request in batch {
                    let _ = request.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, Rgba};

    fn png(image: DynamicImage) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn grayscale_and_alpha_pngs_become_rgb_inputs() {
        let gray = png(DynamicImage::ImageLuma8(ImageBuffer::from_pixel(10, 7, Luma([200u8]))));
        let p = prepare(&gray, 8).unwrap();
        assert_eq!(p.pixels.len(), 3 * 64);
        assert_eq!((p.facts.width, p.facts.height, p.facts.color.as_str()), (10, 7, "L8"));
        // A uniform grey maps every channel to (200/255 − mean)/std.
        let expected = (200.0 / 255.0 - 0.485) / 0.229;
        assert!((p.pixels[0] - expected).abs() < 1e-4);

        let rgba = png(DynamicImage::ImageRgba8(ImageBuffer::from_pixel(4, 4, Rgba([255u8, 0, 0, 0]))));
        let p = prepare(&rgba, 4).unwrap();
        assert_eq!(p.facts.color, "Rgba8");
        assert!((p.pixels[0] - (1.0 - 0.485) / 0.229).abs() < 1e-4, "alpha dropped, colour kept");
    }

    #[test]
    fn bad_bytes_are_refused_with_a_reason() {
        assert!(prepare(b"", 8).unwrap_err().contains("empty"));
        assert!(prepare(b"hello, not an image", 8).unwrap_err().contains("not a JPEG or PNG"));
        let mut truncated = png(DynamicImage::ImageLuma8(ImageBuffer::from_pixel(64, 64, Luma([3u8]))));
        truncated.truncate(truncated.len() / 2);
        let error = prepare(&truncated, 8).unwrap_err();
        assert!(error.contains("truncated") || error.contains("cannot be decoded"), "{error}");
    }

    #[test]
    fn a_declared_gigapixel_canvas_is_refused_before_allocation() {
        // A valid PNG header claiming 100000 × 100000 pixels.
        let mut bytes = png(DynamicImage::ImageLuma8(ImageBuffer::from_pixel(1, 1, Luma([0u8]))));
        bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32fast::hash(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        let err = prepare(&bytes, 8).unwrap_err();
        assert!(err.contains("larger than 16384"), "{err}");
    }
}

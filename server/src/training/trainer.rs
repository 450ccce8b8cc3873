//! The training loop: Adam, early stopping on validation loss, a checkpoint
//! every epoch, test metrics at the end, and the artifact. It reports what
//! it does through an [`Observer`] (the CLI prints, the server's worker
//! records to SQLite) and checks it for cancellation at every step.

use crate::training::dataset::{Dataset, Sample};
use crate::training::model::{Classifier, ModelError};
use crate::training::pipeline::{EpochLoader, LoaderConfig, Transform, IMAGENET_MEAN, IMAGENET_STD};
use app::training::{ArtifactInfo, EpochMetrics, LocalJobSpec};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// What the loop reports as it goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Log(String),
    /// A phase ("train", "valid", "test") of an epoch starts with this many steps.
    Phase { epoch: u32, phase: &'static str, steps: u32 },
    Step { epoch: u32, step: u32, steps: u32, global_step: u64, loss: f64, images_per_s: f64, eta_seconds: f64 },
    Epoch(EpochMetrics),
    Checkpoint { epoch: u32, path: PathBuf },
}

pub trait Observer: Send {
    fn event(&mut self, event: Event);
    fn cancelled(&self) -> bool;
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Model(#[from] ModelError),
    #[error("{0}")]
    Resume(String),
    #[error("{0}")]
    Io(String),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

fn io(context: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.display().to_string();
    move |e| TrainError::Io(format!("{context} {path}: {e}"))
}

/// Where a job stands after its last finished epoch; written next to the
/// checkpoint so a restarted server can carry on from there.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub epochs_done: u32,
    pub global_step: u64,
    pub best_valid_loss: Option<f64>,
    pub best_epoch: u32,
    pub epochs_without_improvement: u32,
    pub history: Vec<EpochMetrics>,
    pub dataset_digest: String,
    /// File names inside the checkpoint folder.
    pub last_weights: String,
    pub best_weights: String,
}

/// Early stopping: whether this epoch's validation loss is a new best, and
/// whether training should stop now. `patience` 0 never stops.
pub fn early_stopping(best: Option<f64>, epochs_without_improvement: u32, valid_loss: f64, patience: u32) -> (bool, u32, bool) {
    let improved = best.is_none_or(|b| valid_loss < b);
    let without = if improved { 0 } else { epochs_without_improvement + 1 };
    (improved, without, patience > 0 && without >= patience)
}

/// Seconds left: the remaining training steps at the current pace, plus
/// evaluation, which runs forward only (about a third of a training step).
pub fn eta_seconds(steps_left: u64, seconds_per_step: f64, eval_steps_left: u64) -> f64 {
    (steps_left as f64 + eval_steps_left as f64 / 3.0) * seconds_per_step
}

pub struct Paths {
    pub checkpoints: PathBuf,
    pub artifact: PathBuf,
}

impl Paths {
    pub fn new(work_dir: &Path) -> Self {
        Paths { checkpoints: work_dir.join("checkpoints"), artifact: work_dir.join("artifact") }
    }

    pub fn state_file(&self) -> PathBuf {
        self.checkpoints.join("state.json")
    }

    pub fn read_state(&self) -> Option<TrainState> {
        let text = std::fs::read_to_string(self.state_file()).ok()?;
        serde_json::from_str(&text).ok()
    }
}

pub fn device() -> Device {
    Device::cuda_if_available()
}

pub fn device_name(device: Device) -> String {
    match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        _ => format!("cpu ({} threads)", tch::get_num_threads()),
    }
}

/// Loader threads when the spec says 0: half the CPUs (libtorch uses the
/// rest), at least one.
pub fn default_loader_threads() -> usize {
    std::thread::available_parallelism().map(|n| (n.get() / 2).max(1)).unwrap_or(1)
}

struct Pass {
    loss_sum: f64,
    correct: i64,
    seen: i64,
}

impl Pass {
    fn loss(&self) -> f64 {
        if self.seen == 0 { 0.0 } else { self.loss_sum / self.seen as f64 }
    }
    fn accuracy(&self) -> f64 {
        if self.seen == 0 { 0.0 } else { self.correct as f64 / self.seen as f64 }
    }
}

/// Trains `spec` on `dataset`, keeping checkpoints and the artifact under
/// `work_dir`. Resumes from the checkpoint there if one exists.
pub fn train(spec: &LocalJobSpec, dataset: &Dataset, work_dir: &Path, observer: &mut dyn Observer) -> Result<ArtifactInfo, TrainError> {
    let started = Instant::now();
    let paths = Paths::new(work_dir);
    std::fs::create_dir_all(&paths.checkpoints).map_err(io("cannot create", &paths.checkpoints))?;
    if spec.threads > 0 {
        tch::set_num_threads(spec.threads as i32);
    }
    let device = device();
    let classes = dataset.report.classes.len() as i64;
    tch::manual_seed(spec.seed as i64);
    let mut model = Classifier::new(spec.architecture, classes, device);

    observer.event(Event::Log(format!("augmentation: {}", spec.augmentation.describe())));
    let mut state = match paths.read_state() {
        Some(state) => {
            if state.dataset_digest != dataset.report.digest {
                return Err(TrainError::Resume(
                    "the dataset changed since the last checkpoint (its digest differs), so the job cannot resume".into(),
                ));
            }
            model.load(&paths.checkpoints.join(&state.last_weights))?;
            observer.event(Event::Log(format!(
                "resuming from the checkpoint of epoch {} (step {})",
                state.epochs_done, state.global_step
            )));
            state
        }
        None => {
            if let Some(weights) = &spec.backbone_weights {
                let n = model.load_backbone(Path::new(weights))?;
                observer.event(Event::Log(format!("loaded {n} backbone tensors from {weights}")));
            }
            TrainState { dataset_digest: dataset.report.digest.clone(), ..Default::default() }
        }
    };
    if spec.freeze_backbone {
        model.freeze_backbone();
    }
    let mut optimizers = model.optimizers(spec.learning_rate)?;
    observer.event(Event::Log(format!(
        "{} with a {classes}-class head ({:.1} M parameters{}) on {}, images {}px, batch {}, lr {}",
        spec.architecture,
        model.parameter_count() as f64 / 1e6,
        if model.is_frozen() { ", backbone frozen" } else { "" },
        device_name(device),
        spec.image_size,
        spec.batch_size,
        spec.learning_rate
    )));

    let loader_threads = if spec.loader_threads > 0 { spec.loader_threads as usize } else { default_loader_threads() };
    let config = LoaderConfig { size: spec.image_size as usize, batch_size: spec.batch_size as usize, threads: loader_threads, prefetch: 2 * loader_threads + 2 };
    let train_set = Arc::new(dataset.train.clone());
    let valid_set = Arc::new(dataset.valid.clone());
    let test_set = Arc::new(dataset.test.clone());
    let steps_per_epoch = train_set.len().div_ceil(config.batch_size) as u32;
    let valid_steps = valid_set.len().div_ceil(config.batch_size) as u64;

    let mut seconds_per_step: Option<f64> = None;
    let first_epoch = state.epochs_done + 1;
    for epoch in first_epoch..=spec.epochs {
        let epoch_started = Instant::now();
        // Train.
        observer.event(Event::Phase { epoch, phase: "train", steps: steps_per_epoch });
        let mut order: Vec<usize> = (0..train_set.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(spec.seed.wrapping_mul(1000).wrapping_add(u64::from(epoch))));
        let loader = EpochLoader::start(train_set.clone(), order, Transform::Train(spec.augmentation), config, spec.seed ^ (u64::from(epoch) << 32));
        let mut pass = Pass { loss_sum: 0.0, correct: 0, seen: 0 };
        let mut step = 0;
        for batch in loader {
            if observer.cancelled() {
                return Err(TrainError::Cancelled);
            }
            step += 1;
            report_failed(observer, &batch.failed, &dataset.report.root);
            // Batch norm can't train on one image; torchvision would crash here.
            if batch.len() < 2 {
                continue;
            }
            let n = batch.len() as i64;
            let size = i64::from(spec.image_size);
            let xs = Tensor::from_slice(&batch.images).view([n, 3, size, size]).to_device(device);
            let ys = Tensor::from_slice(&batch.labels).to_device(device);
            let logits = model.forward_t(&xs, true);
            let loss = logits.cross_entropy_for_logits(&ys);
            for o in optimizers.iter_mut() {
                o.zero_grad();
            }
            loss.backward();
            for o in optimizers.iter_mut() {
                o.step();
            }
            let loss_value = loss.double_value(&[]);
            pass.loss_sum += loss_value * n as f64;
            pass.correct += logits.argmax(-1, false).eq_tensor(&ys).sum(Kind::Int64).int64_value(&[]);
            pass.seen += n;
            state.global_step += 1;

            let elapsed = epoch_started.elapsed().as_secs_f64();
            let per_step = elapsed / f64::from(step);
            let pace = seconds_per_step.map_or(per_step, |s| 0.5 * s + 0.5 * per_step);
            let steps_left = u64::from(steps_per_epoch - step) + u64::from(spec.epochs - epoch) * u64::from(steps_per_epoch);
            let eval_left = valid_steps * u64::from(spec.epochs - epoch + 1) + test_set.len().div_ceil(config.batch_size) as u64;
            observer.event(Event::Step {
                epoch,
                step,
                steps: steps_per_epoch,
                global_step: state.global_step,
                loss: loss_value,
                images_per_s: pass.seen as f64 / elapsed.max(1e-9),
                eta_seconds: eta_seconds(steps_left, pace, eval_left),
            });
        }
        if pass.seen == 0 {
            return Err(TrainError::Io("no training image could be loaded in this epoch".into()));
        }
        let train_seconds = epoch_started.elapsed().as_secs_f64();
        seconds_per_step = Some(train_seconds / f64::from(step.max(1)));

        // Validate.
        observer.event(Event::Phase { epoch, phase: "valid", steps: valid_steps as u32 });
        let valid = evaluate(&model, &valid_set, config, spec, observer)?;
        let metrics = EpochMetrics {
            epoch,
            train_loss: pass.loss(),
            train_accuracy: pass.accuracy(),
            valid_loss: valid.loss(),
            valid_accuracy: valid.accuracy(),
            seconds: epoch_started.elapsed().as_secs_f64(),
            images_per_s: pass.seen as f64 / train_seconds.max(1e-9),
        };
        observer.event(Event::Log(format!(
            "epoch {epoch}/{}: train loss {:.4}, accuracy {:.1} %; valid loss {:.4}, accuracy {:.1} %; {:.0} images/s",
            spec.epochs,
            metrics.train_loss,
            100.0 * metrics.train_accuracy,
            metrics.valid_loss,
            100.0 * metrics.valid_accuracy,
            metrics.images_per_s
        )));

        // Checkpoint: new files first, then the state that names them, then
        // drop the old files, so a crash at any point leaves a usable pair.
        let (improved, without, stop) =
            early_stopping(state.best_valid_loss, state.epochs_without_improvement, metrics.valid_loss, spec.patience);
        let previous = state.clone();
        let last = format!("epoch-{epoch}.safetensors");
        model.save(&paths.checkpoints.join(&last))?;
        state.last_weights = last.clone();
        if improved {
            state.best_valid_loss = Some(metrics.valid_loss);
            state.best_epoch = epoch;
            state.best_weights = last.clone();
        }
        state.epochs_without_improvement = without;
        state.epochs_done = epoch;
        state.history.push(metrics.clone());
        write_state(&paths, &state)?;
        for old in [&previous.last_weights, &previous.best_weights] {
            if !old.is_empty() && *old != state.last_weights && *old != state.best_weights {
                let _ = std::fs::remove_file(paths.checkpoints.join(old));
            }
        }
        observer.event(Event::Epoch(metrics));
        observer.event(Event::Checkpoint { epoch, path: paths.checkpoints.join(&last) });
        if stop {
            observer.event(Event::Log(format!(
                "early stopping: validation loss has not improved for {without} epochs (best {:.4} at epoch {})",
                state.best_valid_loss.unwrap_or_default(),
                state.best_epoch
            )));
            break;
        }
    }

    // Test the best epoch's weights.
    if !state.best_weights.is_empty() {
        model.load(&paths.checkpoints.join(&state.best_weights))?;
    }
    observer.event(Event::Phase { epoch: state.epochs_done, phase: "test", steps: test_set.len().div_ceil(config.batch_size) as u32 });
    let test = evaluate(&model, &test_set, config, spec, observer)?;
    observer.event(Event::Log(format!(
        "test (weights of epoch {}): loss {:.4}, accuracy {:.2} % ({} of {} images)",
        state.best_epoch,
        test.loss(),
        100.0 * test.accuracy(),
        test.correct,
        test.seen
    )));
    let artifact = write_artifact(&paths.artifact, &model, spec, dataset, &state, &test, device, started.elapsed().as_secs_f64())?;
    observer.event(Event::Log(format!("artifact written to {}", artifact.dir)));
    Ok(artifact)
}

fn report_failed(observer: &mut dyn Observer, failed: &[(PathBuf, String)], root: &str) {
    for (path, reason) in failed {
        let shown = path.strip_prefix(root).unwrap_or(path).display();
        observer.event(Event::Log(format!("skipped {shown} while loading: {reason}")));
    }
}

fn evaluate(model: &Classifier, samples: &Arc<Vec<Sample>>, config: LoaderConfig, spec: &LocalJobSpec, observer: &mut dyn Observer) -> Result<Pass, TrainError> {
    let loader = EpochLoader::start(samples.clone(), (0..samples.len()).collect(), Transform::Eval, config, 0);
    let mut pass = Pass { loss_sum: 0.0, correct: 0, seen: 0 };
    let size = i64::from(spec.image_size);
    for batch in loader {
        if observer.cancelled() {
            return Err(TrainError::Cancelled);
        }
        report_failed(observer, &batch.failed, "");
        if batch.is_empty() {
            continue;
        }
        let n = batch.len() as i64;
        tch::no_grad(|| {
            let xs = Tensor::from_slice(&batch.images).view([n, 3, size, size]).to_device(model.device);
            let ys = Tensor::from_slice(&batch.labels).to_device(model.device);
            let logits = model.forward_t(&xs, false);
            // Sum, not mean, so the epoch's loss is exact whatever the batch sizes.
            pass.loss_sum += logits.cross_entropy_for_logits(&ys).double_value(&[]) * n as f64;
            pass.correct += logits.argmax(-1, false).eq_tensor(&ys).sum(Kind::Int64).int64_value(&[]);
            pass.seen += n;
        });
    }
    Ok(pass)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io("cannot write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("cannot rename into", path))
}

fn write_state(paths: &Paths, state: &TrainState) -> Result<(), TrainError> {
    let json = serde_json::to_vec_pretty(state).map_err(|e| TrainError::Io(e.to_string()))?;
    write_atomically(&paths.state_file(), &json)
}

/// The metadata file of an artifact, read back by the endpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArtifactMetadata {
    pub format: String,
    pub architecture: app::training::Architecture,
    pub input_size: u32,
    pub normalization: Normalization,
    pub classes: Vec<String>,
    pub class_folders: Vec<String>,
    pub head: String,
    pub metrics: FinalMetrics,
    pub dataset: DatasetSummary,
    /// The local job's spec; a SageMaker job's train.py writes `training`
    /// (its hyperparameters and hosts) instead.
    #[serde(default)]
    pub spec: LocalJobSpec,
    pub device: String,
    pub seconds: f64,
    /// Where it was trained when not here: `sagemaker:<training job>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained_on: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub resize: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinalMetrics {
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub test_images: i64,
    pub best_epoch: u32,
    pub epochs_run: u32,
    pub best_valid_loss: Option<f64>,
    pub history: Vec<EpochMetrics>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetSummary {
    pub root: String,
    pub digest: String,
    pub images: Vec<(String, u32)>,
}

pub const ARTIFACT_FORMAT: &str = "sagedeck-classifier/1";

#[allow(clippy::too_many_arguments)]
fn write_artifact(dir: &Path, model: &Classifier, spec: &LocalJobSpec, dataset: &Dataset, state: &TrainState, test: &Pass, device: Device, seconds: f64) -> Result<ArtifactInfo, TrainError> {
    std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
    model.save(&dir.join("model.safetensors"))?;
    let classes: Vec<String> = dataset.report.classes.iter().map(|c| c.name.clone()).collect();
    write_atomically(&dir.join("classes.json"), &serde_json::to_vec_pretty(&classes).unwrap_or_default())?;
    let metadata = ArtifactMetadata {
        format: ARTIFACT_FORMAT.into(),
        architecture: spec.architecture,
        input_size: spec.image_size,
        normalization: Normalization { mean: IMAGENET_MEAN, std: IMAGENET_STD, resize: "squash to input_size × input_size".into() },
        classes: classes.clone(),
        class_folders: dataset.class_folders(),
        head: format!("Linear({},128) → ReLU → Linear(128,{})", spec.architecture.features(), classes.len()),
        metrics: FinalMetrics {
            test_loss: test.loss(),
            test_accuracy: test.accuracy(),
            test_images: test.seen,
            best_epoch: state.best_epoch,
            epochs_run: state.epochs_done,
            best_valid_loss: state.best_valid_loss,
            history: state.history.clone(),
        },
        dataset: DatasetSummary {
            root: dataset.report.root.clone(),
            digest: dataset.report.digest.clone(),
            images: dataset.report.splits.iter().map(|s| (s.split.clone(), s.total)).collect(),
        },
        spec: spec.clone(),
        device: device_name(device),
        seconds,
        trained_on: None,
    };
    write_atomically(&dir.join("metadata.json"), &serde_json::to_vec_pretty(&metadata).unwrap_or_default())?;
    Ok(artifact_info(dir, &metadata))
}

/// Describes an artifact folder from its metadata, for the job page.
pub fn artifact_info(dir: &Path, metadata: &ArtifactMetadata) -> ArtifactInfo {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| Some((e.file_name().to_string_lossy().to_string(), e.metadata().ok()?.len())))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    ArtifactInfo {
        dir: dir.display().to_string(),
        files,
        test_loss: metadata.metrics.test_loss,
        test_accuracy: metadata.metrics.test_accuracy,
        best_epoch: metadata.metrics.best_epoch,
        classes: metadata.classes.clone(),
    }
}

pub fn read_artifact(dir: &Path) -> Option<ArtifactMetadata> {
    serde_json::from_slice(&std::fs::read(dir.join("metadata.json")).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_stopping_waits_for_patience() {
        assert_eq!(early_stopping(None, 0, 1.0, 2), (true, 0, false));
        assert_eq!(early_stopping(Some(1.0), 0, 0.9, 2), (true, 0, false));
        assert_eq!(early_stopping(Some(0.9), 0, 0.95, 2), (false, 1, false));
        assert_eq!(early_stopping(Some(0.9), 1, 0.9, 2), (false, 2, true), "equal is not better");
        assert_eq!(early_stopping(Some(0.9), 7, 1.5, 0), (false, 8, false), "patience 0 never stops");
    }

    struct Quiet;
    impl Observer for Quiet {
        fn event(&mut self, _: Event) {}
        fn cancelled(&self) -> bool {
            false
        }
    }

    fn tiny_spec(dataset: &Path) -> LocalJobSpec {
        LocalJobSpec {
            dataset: dataset.display().to_string(),
            image_size: 32,
            epochs: 1,
            batch_size: 8,
            loader_threads: 1,
            ..LocalJobSpec::default()
        }
    }

    fn tensors(path: &Path) -> std::collections::HashMap<String, Tensor> {
        Tensor::read_safetensors(path).unwrap().into_iter().collect()
    }

    /// The seeds' transfer learning: weights come from a file this test makes
    /// by training, the backbone is frozen, and only the head may change.
    #[test]
    fn frozen_backbone_training_changes_only_the_head() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        crate::training::demo::write(&data, crate::training::demo::DemoOptions { per_class: 8, size: 32, seed: 3 }).unwrap();
        let dataset = crate::training::dataset::check(&data, 2);

        let first = train(&tiny_spec(&data), &dataset, &dir.path().join("first"), &mut Quiet).unwrap();
        let weights = Path::new(&first.dir).join("model.safetensors");
        let before = tensors(&weights);

        let spec = LocalJobSpec { backbone_weights: Some(weights.display().to_string()), freeze_backbone: true, seed: 9, ..tiny_spec(&data) };
        let second = train(&spec, &dataset, &dir.path().join("second"), &mut Quiet).unwrap();
        let after = tensors(&Path::new(&second.dir).join("model.safetensors"));

        assert_eq!(before.len(), after.len());
        let mut head_changed = 0;
        for (name, old) in &before {
            let new = &after[name];
            if name.starts_with("fc.") {
                if !old.equal(new) {
                    head_changed += 1;
                }
            } else {
                assert!(old.equal(new), "{name} changed although the backbone was frozen");
            }
        }
        assert_eq!(head_changed, 4, "every head tensor should have trained");
    }

    #[test]
    fn a_checkpoint_resumes_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        crate::training::demo::write(&data, crate::training::demo::DemoOptions { per_class: 8, size: 32, seed: 4 }).unwrap();
        let dataset = crate::training::dataset::check(&data, 2);
        let work = dir.path().join("job");
        train(&tiny_spec(&data), &dataset, &work, &mut Quiet).unwrap();
        let state = Paths::new(&work).read_state().unwrap();
        assert_eq!(state.epochs_done, 1);
        // Asking for two epochs now runs only the second.
        struct Count(u32);
        impl Observer for Count {
            fn event(&mut self, e: Event) {
                if let Event::Epoch(_) = e {
                    self.0 += 1;
                }
            }
            fn cancelled(&self) -> bool {
                false
            }
        }
        let mut count = Count(0);
        train(&LocalJobSpec { epochs: 2, ..tiny_spec(&data) }, &dataset, &work, &mut count).unwrap();
        assert_eq!(count.0, 1);
        let state = Paths::new(&work).read_state().unwrap();
        assert_eq!(state.history.iter().map(|h| h.epoch).collect::<Vec<_>>(), [1, 2]);
        // A changed dataset refuses to resume.
        let mut other = dataset.clone();
        other.report.digest = "different".into();
        assert!(matches!(train(&LocalJobSpec { epochs: 3, ..tiny_spec(&data) }, &other, &work, &mut Quiet), Err(TrainError::Resume(_))));
    }

    #[test]
    fn eta_counts_evaluation_at_a_third_of_a_step() {
        assert_eq!(eta_seconds(10, 0.5, 0), 5.0);
        assert_eq!(eta_seconds(0, 0.5, 6), 1.0);
    }
}

//! The background worker: one job at a time, oldest first, on a blocking
//! thread; it checks the dataset, trains, records, and on start-up resumes
//! the jobs a previous server process left running. It also answers the
//! Training page's server functions.

use crate::journal::{Change, Journal};
use crate::training::dataset;
use crate::training::demo::{self, DemoOptions};
use crate::training::jobs::{JobRow, JobStore};
use crate::training::trainer::{self, Event, Observer, Paths, TrainError};
use app::training::{
    DatasetReport, DemoDataset, JobStatus, LocalJobDetail, LocalJobSpec, LocalJobSummary, LocalTrainingService, TrainingDefaults,
};
use app::ApiError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Notify};
use tracing::Instrument;

/// A job that crashed the server this many times is not started again.
pub const MAX_ATTEMPTS: i64 = 3;

pub struct LocalTrainer {
    store: JobStore,
    journal: Journal,
    data_dir: PathBuf,
    roots: crate::paths::ReadableRoots,
    wake: Notify,
    cancels: Mutex<HashMap<i64, Arc<AtomicBool>>>,
    demo_lock: tokio::sync::Mutex<()>,
}

/// Sends the trainer's events to the recorder and reads the cancel flag.
struct ChannelObserver {
    events: mpsc::UnboundedSender<Event>,
    cancel: Arc<AtomicBool>,
}

impl Observer for ChannelObserver {
    fn event(&mut self, event: Event) {
        let _ = self.events.send(event);
    }
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

fn check_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The report's problems as one message.
pub fn refusal(report: &DatasetReport) -> String {
    let mut message = format!("The dataset at {} can't be trained on: {}.", report.root, report.problems.join("; "));
    if !report.skipped.is_empty() {
        message.push_str(&format!(" {} files were skipped (see the dataset check).", report.skipped.len()));
    }
    message
}

impl LocalTrainer {
    /// Recovers interrupted jobs and starts the worker.
    pub async fn start(store: JobStore, journal: Journal, data_dir: PathBuf, roots: crate::paths::ReadableRoots) -> Arc<Self> {
        let trainer = Arc::new(LocalTrainer {
            store,
            journal,
            data_dir,
            roots,
            wake: Notify::new(),
            cancels: Mutex::new(HashMap::new()),
            demo_lock: tokio::sync::Mutex::new(()),
        });
        trainer.recover().await;
        let worker = trainer.clone();
        tokio::spawn(async move { worker.run().await });
        trainer
    }

    pub fn demo_path(&self) -> PathBuf {
        self.data_dir.join("datasets").join("demo-shapes")
    }

    fn jobs_dir(&self) -> PathBuf {
        self.data_dir.join("jobs")
    }

    /// Jobs left Running by a server that died go back to the queue and
    /// resume from their checkpoint; after MAX_ATTEMPTS they are Interrupted.
    async fn recover(&self) {
        let jobs = match self.store.left_running().await {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::error!(error = %e, "cannot look for interrupted jobs");
                return;
            }
        };
        for job in jobs {
            let state = Paths::new(Path::new(&job.work_dir)).read_state();
            let result = if job.attempts >= MAX_ATTEMPTS {
                let why = format!("the server stopped during this job {} times; it is not started again", job.attempts);
                self.store.finish(job.id, JobStatus::Interrupted, Some(&why), None).await
            } else {
                let why = match &state {
                    Some(s) => format!(
                        "the server stopped during this job; it will resume from the checkpoint of epoch {} when the worker is free",
                        s.epochs_done
                    ),
                    None => "the server stopped during this job before its first checkpoint; it will start over".into(),
                };
                self.store.requeue(job.id, &why).await
            };
            tracing::warn!(job = job.id, attempts = job.attempts, resumed_from = state.map(|s| s.epochs_done), "job interrupted by a restart");
            if let Err(e) = result {
                tracing::error!(job = job.id, error = %e, "cannot recover the job");
            }
        }
    }

    async fn run(self: Arc<Self>) {
        loop {
            match self.store.next_queued().await {
                Ok(Some(job)) => self.run_job(job).await,
                Ok(None) => {
                    // Woken by a new job; the timeout only guards against a missed wake-up.
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.wake.notified()).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "worker cannot read the queue");
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                }
            }
        }
    }

    async fn run_job(&self, job: JobRow) {
        // A span guard must not live across awaits; instrument the future instead.
        let span = tracing::info_span!("local_job", id = job.id, name = %job.spec.name);
        self.run_job_inner(job).instrument(span).await
    }

    async fn run_job_inner(&self, job: JobRow) {
        let id = job.id;
        let resuming = job.attempts > 0;
        if let Err(e) = self.store.mark_running(id).await {
            tracing::error!(error = %e, "cannot start the job");
            return;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        self.cancels.lock().unwrap().insert(id, cancel.clone());
        let work_dir = PathBuf::from(&job.work_dir);
        if let Some(state) = Paths::new(&work_dir).read_state() {
            let _ = self.store.rewind(id, state.epochs_done, state.global_step).await;
        }

        let (tx, rx) = mpsc::unbounded_channel();
        let recorder = {
            let store = self.store.clone();
            tokio::spawn(async move { store.record(id, rx).await }.in_current_span())
        };
        let spec = job.spec.clone();
        let store = self.store.clone();
        let handle = tokio::runtime::Handle::current();
        let span = tracing::Span::current();
        let outcome = tokio::task::spawn_blocking(move || {
            let _in_job = span.enter();
            let _ = tx.send(Event::Log(format!("checking the dataset at {}", spec.dataset)));
            let checked = dataset::check(Path::new(&spec.dataset), check_threads());
            let report = &checked.report;
            let _ = tx.send(Event::Log(format!(
                "dataset: {} classes, {} usable images ({}), {} skipped, checked in {:.1} s",
                report.classes.len(),
                report.usable_images(),
                report.splits.iter().map(|s| format!("{} {}", s.split, s.total)).collect::<Vec<_>>().join(", "),
                report.skipped.len(),
                report.seconds
            )));
            for skipped in report.skipped.iter().take(50) {
                let _ = tx.send(Event::Log(format!("skipped {}: {}", skipped.path, skipped.reason)));
            }
            let device = trainer::device_name(trainer::device());
            let _ = handle.block_on(store.set_dataset(id, report, &device));
            if !report.can_train() {
                return Err(TrainError::Resume(refusal(report)));
            }
            let mut observer = ChannelObserver { events: tx, cancel };
            trainer::train(&spec, &checked, &work_dir, &mut observer)
        })
        .await;
        // The sender went with the blocking task: the recorder drains and ends.
        let _ = recorder.await;
        self.cancels.lock().unwrap().remove(&id);

        let (status, message, test) = match outcome {
            Ok(Ok(artifact)) => (JobStatus::Completed, None, Some((artifact.test_loss, artifact.test_accuracy))),
            Ok(Err(TrainError::Cancelled)) => (JobStatus::Cancelled, Some("cancelled while running".to_string()), None),
            Ok(Err(TrainError::Resume(why))) if resuming => (JobStatus::Interrupted, Some(why), None),
            Ok(Err(e)) => (JobStatus::Failed, Some(e.to_string()), None),
            Err(join) => {
                let why = join
                    .try_into_panic()
                    .ok()
                    .and_then(|p| p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())))
                    .unwrap_or_else(|| "the training thread stopped unexpectedly".into());
                (JobStatus::Failed, Some(format!("training crashed: {why}")), None)
            }
        };
        tracing::info!(status = %status, message = message.as_deref().unwrap_or(""), "job ended");
        let _ = self.store.log(id, &format!("job {}{}", status.as_str().to_lowercase(), message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())).await;
        if let Err(e) = self.store.finish(id, status, message.as_deref(), test).await {
            tracing::error!(error = %e, "cannot record the job's end");
        }
    }

    async fn check(&self, path: &Path) -> Result<dataset::Dataset, ApiError> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || dataset::check(&path, check_threads()))
            .await
            .map_err(|e| ApiError::Internal(format!("the dataset check crashed: {e}")))
    }

    /// Relative dataset paths are taken from the server's working folder.
    fn absolute(path: &str) -> PathBuf {
        let p = PathBuf::from(path);
        if p.is_absolute() {
            p
        } else {
            std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
        }
    }
}

#[async_trait::async_trait]
impl LocalTrainingService for LocalTrainer {
    async fn defaults(&self) -> Result<TrainingDefaults, ApiError> {
        let demo = Self::absolute(&self.demo_path().display().to_string());
        let demo_exists = demo.join("train").is_dir();
        let spec = LocalJobSpec {
            dataset: if demo_exists { demo.display().to_string() } else { String::new() },
            ..LocalJobSpec::default()
        };
        Ok(TrainingDefaults {
            spec,
            demo_path: demo.display().to_string(),
            demo_exists,
            device: trainer::device_name(trainer::device()),
            cpu_threads: check_threads() as u32,
        })
    }

    async fn list(&self) -> Result<Vec<LocalJobSummary>, ApiError> {
        Ok(self.store.list(200).await?.into_iter().map(|j| j.summary).collect())
    }

    async fn get(&self, id: i64) -> Result<LocalJobDetail, ApiError> {
        // Four independent reads on four pooled connections: the page costs
        // the slowest of them, not their sum.
        let (job, epochs, steps, logs) = tokio::try_join!(self.store.get(id), self.store.epochs(id), self.store.steps(id, 400), self.store.logs(id, 200))?;
        let artifact_dir = Paths::new(Path::new(&job.work_dir)).artifact;
        let artifact = if job.status == JobStatus::Completed {
            trainer::read_artifact(&artifact_dir).map(|m| trainer::artifact_info(&artifact_dir, &m))
        } else {
            None
        };
        Ok(LocalJobDetail {
            epochs,
            steps,
            logs,
            dataset: job.dataset_report,
            artifact,
            device: job.device,
            spec: job.spec,
            summary: job.summary,
        })
    }

    /// The dataset is checked here, so a user hears at once why it can't
    /// train, and again by the worker when the job starts: files may change
    /// while a job waits in the queue.
    async fn create(&self, spec: LocalJobSpec) -> Result<LocalJobSummary, ApiError> {
        let mut spec = spec;
        spec.dataset = self.roots.resolve(&spec.dataset, "dataset")?.display().to_string();
        if let Some(weights) = &spec.backbone_weights {
            let path = self.roots.resolve(weights, "backbone_weights")?;
            if !path.is_file() {
                return Err(ApiError::Invalid(format!("backbone_weights: there is no file at {}.", path.display())));
            }
            spec.backbone_weights = Some(path.display().to_string());
        }
        let checked = self.check(Path::new(&spec.dataset)).await?;
        let target = format!("local training job {}", spec.name);
        if !checked.report.can_train() {
            let message = refusal(&checked.report);
            self.journal
                .record(Change { backend: "local", action: "training.local.create", target: &target, before: None, after: None, outcome: Err(message.clone()) })
                .await;
            return Err(ApiError::Invalid(message));
        }
        let id = self.store.insert(&spec, JobStatus::Queued, "console", &self.jobs_dir(), None).await?;
        self.store
            .log(id, &format!(
                "queued: {} on {} ({} classes, {} images)",
                spec.architecture,
                spec.dataset,
                checked.report.classes.len(),
                checked.report.usable_images()
            ))
            .await?;
        self.journal
            .record(Change {
                backend: "local",
                action: "training.local.create",
                target: &format!("local training job {id} ({})", spec.name),
                before: None,
                after: Some("Queued".into()),
                outcome: Ok(()),
            })
            .await;
        self.wake.notify_one();
        Ok(self.store.get(id).await?.summary)
    }

    async fn cancel(&self, id: i64) -> Result<LocalJobSummary, ApiError> {
        let job = self.store.get(id).await?;
        if !job.status.can_cancel() {
            return Err(ApiError::Conflict(format!("Job {id} is already {} and can't be cancelled.", job.status)));
        }
        let target = format!("local training job {id} ({})", job.spec.name);
        if job.source == "cli" {
            return Err(ApiError::Conflict(format!(
                "Job {id} runs in a `sagedeck train` process, not in this console; stop it there (Ctrl-C)."
            )));
        }
        if !self.store.cancel_queued(id).await? {
            let flag = self.cancels.lock().unwrap().get(&id).cloned();
            match flag {
                Some(flag) => {
                    flag.store(true, Ordering::Relaxed);
                    self.store.request_cancel(id).await?;
                    self.store.log(id, "cancel requested: stopping after the current step").await?;
                }
                None => return Err(ApiError::Conflict(format!("Job {id} is between states; try again in a moment."))),
            }
        }
        self.journal
            .record(Change {
                backend: "local",
                action: "training.local.cancel",
                target: &target,
                before: Some(job.status.to_string()),
                after: Some("Cancelled".into()),
                outcome: Ok(()),
            })
            .await;
        Ok(self.store.get(id).await?.summary)
    }

    async fn check_dataset(&self, path: String) -> Result<DatasetReport, ApiError> {
        Ok(self.check(&self.roots.resolve(&path, "dataset")?).await?.report)
    }

    async fn make_demo(&self) -> Result<DemoDataset, ApiError> {
        let _one_at_a_time = self.demo_lock.lock().await;
        let root = Self::absolute(&self.demo_path().display().to_string());
        if root.join("train").is_dir() {
            let checked = self.check(&root).await?;
            if checked.report.can_train() {
                return Ok(DemoDataset { path: root.display().to_string(), created: false, report: checked.report });
            }
        }
        // Written next to its place and renamed, so a half-written set is never used.
        let staging = root.with_extension("partial");
        let (s, r) = (staging.clone(), root.clone());
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<u32> {
            let _ = std::fs::remove_dir_all(&s);
            let n = demo::write(&s, DemoOptions::default())?;
            let _ = std::fs::remove_dir_all(&r);
            std::fs::rename(&s, &r)?;
            Ok(n)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("making the demo set crashed: {e}")))?;
        let target = root.display().to_string();
        match written {
            Ok(n) => {
                self.journal
                    .record(Change { backend: "local", action: "dataset.demo.create", target: &target, before: None, after: Some(format!("{n} images")), outcome: Ok(()) })
                    .await;
                let checked = self.check(&root).await?;
                Ok(DemoDataset { path: target, created: true, report: checked.report })
            }
            Err(e) => {
                let message = format!("cannot write the demo set to {target}: {e}");
                self.journal
                    .record(Change { backend: "local", action: "dataset.demo.create", target: &target, before: None, after: None, outcome: Err(message.clone()) })
                    .await;
                Err(ApiError::Internal(message))
            }
        }
    }
}

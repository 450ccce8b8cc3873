//! `sagedeck train` and `sagedeck demo-data`: the Training page's worker,
//! headless. `train` prints progress, writes the same artifact, and records
//! the job in the database when one is given.

use crate::training::dataset;
use crate::training::demo::{self, DemoOptions};
use crate::training::jobs::JobStore;
use crate::training::trainer::{self, Event, Observer, TrainError};
use app::training::{Architecture, JobStatus, LocalJobSpec};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn parse_architecture(word: &str) -> Result<Architecture, String> {
    Architecture::parse(word).ok_or_else(|| format!("unknown architecture {word:?}: use resnet18 or resnet50"))
}

#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// Dataset folder with train/, valid/ and test/ (one folder per class inside each).
    #[arg(long)]
    pub data: PathBuf,
    /// Folder for checkpoints and the artifact [default: data/runs/<name>]. Running again with the same folder resumes.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value = "local-training")]
    pub name: String,
    /// resnet18 (fast on CPU) or resnet50 (the seeds' model).
    #[arg(long, default_value = "resnet18", value_parser = parse_architecture)]
    pub arch: Architecture,
    #[arg(long, default_value_t = LocalJobSpec::default().image_size)]
    pub image_size: u32,
    #[arg(long, default_value_t = LocalJobSpec::default().epochs)]
    pub epochs: u32,
    #[arg(long, default_value_t = LocalJobSpec::default().batch_size)]
    pub batch_size: u32,
    /// Adam's learning rate.
    #[arg(long, default_value_t = LocalJobSpec::default().learning_rate)]
    pub lr: f64,
    /// Epochs without a better validation loss before stopping; 0 never stops early.
    #[arg(long, default_value_t = 3)]
    pub patience: u32,
    /// libtorch CPU threads; 0 lets libtorch choose.
    #[arg(long, default_value_t = 0)]
    pub threads: u32,
    /// Image decoding threads; 0 picks half the CPUs.
    #[arg(long, default_value_t = 0)]
    pub loader_threads: u32,
    /// Weights file (safetensors or .ot) to load the backbone from.
    #[arg(long)]
    pub backbone_weights: Option<PathBuf>,
    /// Train only the head (needs --backbone-weights).
    #[arg(long)]
    pub freeze_backbone: bool,
    /// How training images are varied: `photos` (random crops of 35–100 %
    /// of the area, mirrored half the time), `none`, or a list such as
    /// `crop=0.7-1` or `flip,crop=0.5-1`. Characters and digits: no flip.
    #[arg(long, default_value = "photos", value_parser = app::training::spec::Augmentation::parse)]
    pub augment: app::training::spec::Augmentation,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Record the job in this database (for example sqlite://data/sagedeck.db) so the console lists it.
    #[arg(long, env = "SAGEDECK_DATABASE_URL")]
    pub database_url: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Where to write the dataset (train/, valid/, test/).
    #[arg(long, default_value = "data/datasets/demo-shapes")]
    pub out: PathBuf,
    /// Training images per class; valid/ and test/ get a quarter as many.
    #[arg(long, default_value_t = DemoOptions::default().per_class)]
    pub per_class: u32,
    /// Image side in pixels.
    #[arg(long, default_value_t = DemoOptions::default().size)]
    pub size: u32,
    #[arg(long, default_value_t = DemoOptions::default().seed)]
    pub seed: u64,
}

pub fn demo_data(args: DemoArgs) -> anyhow::Result<()> {
    if args.out.join("train").exists() {
        anyhow::bail!("{} already holds a dataset; remove it or choose another --out", args.out.display());
    }
    let started = std::time::Instant::now();
    let n = demo::write(&args.out, DemoOptions { per_class: args.per_class, size: args.size.clamp(16, 1024), seed: args.seed })?;
    println!("wrote {n} images of {} classes to {} in {:.1} s", demo::CLASSES.len(), args.out.display(), started.elapsed().as_secs_f64());
    Ok(())
}

struct CliObserver {
    cancel: Arc<AtomicBool>,
    record: Option<tokio::sync::mpsc::UnboundedSender<Event>>,
    tty: bool,
}

impl Observer for CliObserver {
    fn event(&mut self, event: Event) {
        match &event {
            Event::Log(line) => {
                if self.tty {
                    eprint!("\r\x1b[2K");
                }
                println!("{line}");
            }
            Event::Step { epoch, step, steps, loss, images_per_s, eta_seconds, .. } => {
                let line = format!(
                    "epoch {epoch} step {step}/{steps} loss {loss:.4} {images_per_s:.0} images/s ETA {:.0} s",
                    eta_seconds
                );
                if self.tty {
                    eprint!("\r\x1b[2K{line}");
                    let _ = std::io::stderr().flush();
                } else if step % 10 == 0 || step == steps {
                    eprintln!("{line}");
                }
            }
            Event::Phase { .. } | Event::Epoch(_) | Event::Checkpoint { .. } => {}
        }
        if let Some(tx) = &self.record {
            let _ = tx.send(event);
        }
    }
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

pub async fn train(args: TrainArgs) -> anyhow::Result<()> {
    let spec = LocalJobSpec {
        name: args.name.clone(),
        dataset: std::path::absolute(&args.data)?.display().to_string(),
        architecture: args.arch,
        image_size: args.image_size,
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        patience: args.patience,
        threads: args.threads,
        loader_threads: args.loader_threads,
        backbone_weights: args.backbone_weights.as_ref().map(|p| p.display().to_string()),
        freeze_backbone: args.freeze_backbone,
        augmentation: args.augment,
        seed: args.seed,
    }
    .validate()
    .map_err(|errors| anyhow::anyhow!("{}", app::training::spec::describe(&errors)))?;
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("data/runs").join(&spec.name));
    let out = std::path::absolute(out)?;

    let checked = {
        let path = PathBuf::from(&spec.dataset);
        tokio::task::spawn_blocking(move || dataset::check(&path, std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))).await?
    };
    let report = &checked.report;
    println!(
        "dataset {}: {} classes, {} usable images ({}), {} skipped, checked in {:.1} s",
        report.root,
        report.classes.len(),
        report.usable_images(),
        report.splits.iter().map(|s| format!("{} {}", s.split, s.total)).collect::<Vec<_>>().join(", "),
        report.skipped.len(),
        report.seconds
    );
    for s in &report.skipped {
        println!("  skipped {}: {}", s.path, s.reason);
    }
    for w in &report.warnings {
        println!("  warning: {w}");
    }
    if !report.can_train() {
        anyhow::bail!("{}", crate::training::worker::refusal(report));
    }

    let store = match &args.database_url {
        Some(url) => Some(JobStore::new(crate::store::open(url).await?)),
        None => None,
    };
    let (job, recorder, record_tx) = match &store {
        Some(store) => {
            let id = store
                .insert(&spec, JobStatus::Running, "cli", &out, Some(&out.display().to_string()))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            store.mark_running(id).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            store.set_dataset(id, report, &trainer::device_name(trainer::device())).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let s = store.clone();
            println!("recording as local job {id}");
            (Some(id), Some(tokio::spawn(async move { s.record(id, rx).await })), Some(tx))
        }
        None => (None, None, None),
    };

    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupted: stopping after this step (the last checkpoint stays in place; run again to resume)");
                cancel.store(true, Ordering::Relaxed);
            }
        });
    }
    let mut observer = CliObserver { cancel, record: record_tx, tty: std::io::stderr().is_terminal() };
    let started = std::time::Instant::now();
    let result = tokio::task::spawn_blocking(move || {
        let r = trainer::train(&spec, &checked, &out, &mut observer);
        drop(observer);
        r
    })
    .await?;
    if let Some(recorder) = recorder {
        let _ = recorder.await;
    }
    let (status, message, test) = match &result {
        Ok(a) => (JobStatus::Completed, None, Some((a.test_loss, a.test_accuracy))),
        Err(TrainError::Cancelled) => (JobStatus::Cancelled, Some("interrupted from the terminal".to_string()), None),
        Err(e) => (JobStatus::Failed, Some(e.to_string()), None),
    };
    if let (Some(store), Some(id)) = (&store, job) {
        let _ = store.finish(id, status, message.as_deref(), test).await;
    }
    let artifact = result.map_err(|e| anyhow::anyhow!("training {}: {e}", status.as_str().to_lowercase()))?;
    println!(
        "done in {:.1} s: test accuracy {:.2} %, test loss {:.4} (best epoch {}); artifact in {}",
        started.elapsed().as_secs_f64(),
        100.0 * artifact.test_accuracy,
        artifact.test_loss,
        artifact.best_epoch,
        artifact.dir
    );
    Ok(())
}

//! `sagedeck bench`: the tch training loop against the equivalent
//! PyTorch-Python loop (torchvision ImageFolder + DataLoader, as in the
//! seeds' ec2train1.py), same data, model, batch size, image size and
//! libtorch thread count, run one after the other from this process.
//! Prints images/s of each and their ratio.

use crate::training::dataset;
use crate::training::demo::{self, DemoOptions};
use crate::training::model::Classifier;
use crate::training::pipeline::{EpochLoader, LoaderConfig, Transform};
use crate::training::trainer::default_loader_threads;
use app::training::Architecture;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Dataset to train on [default: the demo set, made under data/bench/ if missing].
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[arg(long, default_value = "resnet18", value_parser = |w: &str| Architecture::parse(w).ok_or(format!("unknown architecture {w}")))]
    pub arch: Architecture,
    #[arg(long, default_value_t = 64)]
    pub image_size: u32,
    /// Batch size [default: a local job's default].
    #[arg(long, default_value_t = app::training::LocalJobSpec::default().batch_size)]
    pub batch_size: u32,
    /// libtorch threads for both loops [default: the CPU count].
    #[arg(long)]
    pub threads: Option<u32>,
    /// Sagedeck's decoding threads [default: half the CPUs]; the Python loop's
    /// DataLoader is also run with this many workers, besides the seeds' 0.
    #[arg(long)]
    pub loader_threads: Option<u32>,
    /// Epochs per loop; the first is warm-up and not timed when there are two or more.
    #[arg(long, default_value_t = 3)]
    pub epochs: u32,
    /// The Python with torch and torchvision.
    #[arg(long, default_value = ".venv/bin/python")]
    pub python: PathBuf,
    /// The Python loop.
    #[arg(long, default_value = "bench/pytorch_train.py")]
    pub script: PathBuf,
}

pub struct Measured {
    pub images_per_s: f64,
    pub images: usize,
    pub seconds: f64,
}

/// The Rust side: the same pipeline and model the worker uses, train steps only.
pub fn tch_loop(data: &std::path::Path, args: &BenchArgs, threads: u32, loader_threads: u32) -> anyhow::Result<Measured> {
    tch::set_num_threads(threads as i32);
    tch::manual_seed(0);
    let checked = dataset::check(data, threads as usize);
    anyhow::ensure!(checked.report.can_train(), "{}", crate::training::worker::refusal(&checked.report));
    let model = Classifier::new(args.arch, checked.report.classes.len() as i64, tch::Device::Cpu);
    let mut optimizers = model.optimizers(0.001)?;
    let samples = Arc::new(checked.train.clone());
    let config = LoaderConfig { size: args.image_size as usize, batch_size: args.batch_size as usize, threads: loader_threads as usize, prefetch: 2 * loader_threads as usize + 2 };
    let size = i64::from(args.image_size);
    let (mut images, mut seconds) = (0usize, 0f64);
    for epoch in 0..args.epochs {
        let mut order: Vec<usize> = (0..samples.len()).collect();
        order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(u64::from(epoch)));
        let started = Instant::now();
        let mut seen = 0;
        for batch in EpochLoader::start(samples.clone(), order, Transform::Train(crate::training::pipeline::Augmentation::PHOTOS), config, u64::from(epoch)) {
            if batch.len() < 2 {
                continue;
            }
            let n = batch.len() as i64;
            let xs = Tensor::from_slice(&batch.images).view([n, 3, size, size]);
            let ys = Tensor::from_slice(&batch.labels);
            let loss = model.forward_t(&xs, true).cross_entropy_for_logits(&ys);
            for o in optimizers.iter_mut() {
                o.zero_grad();
            }
            loss.backward();
            for o in optimizers.iter_mut() {
                o.step();
            }
            let _ = loss.to_kind(Kind::Float).double_value(&[]);
            seen += batch.len();
        }
        if args.epochs == 1 || epoch > 0 {
            images += seen;
            seconds += started.elapsed().as_secs_f64();
        }
    }
    Ok(Measured { images_per_s: images as f64 / seconds, images, seconds })
}

fn python_loop(data: &std::path::Path, args: &BenchArgs, threads: u32, workers: u32) -> anyhow::Result<Measured> {
    let output = std::process::Command::new(&args.python)
        .arg(&args.script)
        .args(["--data", &data.display().to_string()])
        .args(["--arch", args.arch.as_str()])
        .args(["--image-size", &args.image_size.to_string()])
        .args(["--batch-size", &args.batch_size.to_string()])
        .args(["--threads", &threads.to_string()])
        .args(["--workers", &workers.to_string()])
        .args(["--epochs", &args.epochs.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run {} {}: {e}", args.python.display(), args.script.display()))?;
    anyhow::ensure!(output.status.success(), "the Python loop failed ({})", output.status);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).ok_or_else(|| anyhow::anyhow!("the Python loop printed no result: {stdout}"))?;
    let v: serde_json::Value = serde_json::from_str(line)?;
    Ok(Measured {
        images_per_s: v["images_per_s"].as_f64().unwrap_or(0.0),
        images: v["images"].as_u64().unwrap_or(0) as usize,
        seconds: v["seconds"].as_f64().unwrap_or(0.0),
    })
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let data = match &args.data {
        Some(d) => d.clone(),
        None => {
            let d = PathBuf::from("data/bench/demo-shapes");
            if !d.join("train").is_dir() {
                demo::write(&d, DemoOptions::default())?;
            }
            d
        }
    };
    let cpus = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
    let threads = args.threads.unwrap_or(cpus);
    let loader_threads = args.loader_threads.unwrap_or(default_loader_threads() as u32);
    println!(
        "bench: {} at {}px, batch {}, {} libtorch threads, {} epochs ({}), data {}",
        args.arch,
        args.image_size,
        args.batch_size,
        threads,
        args.epochs,
        if args.epochs > 1 { "first one not timed" } else { "timed" },
        data.display()
    );
    let rust = tch_loop(&data, &args, threads, loader_threads)?;
    println!("sagedeck (tch, {loader_threads} decoding threads): {:.1} images/s ({} images in {:.1} s)", rust.images_per_s, rust.images, rust.seconds);
    let mut rows = vec![];
    let mut worker_counts = vec![0];
    if loader_threads > 0 {
        worker_counts.push(loader_threads);
    }
    for workers in worker_counts {
        let py = python_loop(&data, &args, threads, workers)?;
        println!(
            "pytorch (torchvision ImageFolder + DataLoader, num_workers={workers}): {:.1} images/s ({} images in {:.1} s)",
            py.images_per_s, py.images, py.seconds
        );
        rows.push((workers, py));
    }
    for (workers, py) in rows {
        println!("ratio sagedeck / pytorch (num_workers={workers}): {:.2}", rust.images_per_s / py.images_per_s);
    }
    Ok(())
}

//! `sagedeck bench-serve`: in one run, (a) the deployed model's raw libtorch
//! forward at batch 1 (the limit), (b) a local endpoint over HTTP, one
//! request at a time and under N concurrent clients, and (c) the Python
//! reference server (bench/python_serve.py: the seeds' handler logic, PIL
//! decode, resize, ToTensor, forward) on the same weights, the same JPEGs
//! and the same libtorch thread count. Prints p50/p99 latency, throughput
//! and the ratios.

use super::invoke::UrlFetcher;
use super::serving::{prepare, ModelInfo};
use super::EndpointHub;
use crate::training::demo::{self, DemoOptions};
use crate::training::model::Classifier;
use crate::training::trainer::{ArtifactMetadata, DatasetSummary, FinalMetrics, Normalization, ARTIFACT_FORMAT};
use app::endpoints::Batching;
use app::training::{Architecture, LocalJobSpec};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct PredictArgs {
    /// A completed job's artifact folder.
    #[arg(long)]
    pub artifact: PathBuf,
    /// How many classes to name per image.
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    /// JPEG or PNG files.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// `sagedeck predict`: the artifact's forward on files, with no server in
/// between: one JSON line per image with the logits and the top classes.
pub fn predict(args: PredictArgs) -> anyhow::Result<()> {
    let info = ModelInfo::read(&args.artifact).map_err(anyhow::Error::msg)?;
    let model = info.load().map_err(anyhow::Error::msg)?;
    let mut failed = 0;
    for path in &args.images {
        let line = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| prepare(&bytes, info.size()))
            .and_then(|p| super::serving::forward(&model, &p.pixels, 1, info.size()));
        match line {
            Ok(rows) => {
                let logits = rows.into_iter().next().unwrap_or_default();
                let top = app::endpoints::top_k(&logits, &info.metadata.classes, args.top_k);
                println!("{}", serde_json::json!({ "image": path, "logits": [logits], "predictions": top }));
            }
            Err(e) => {
                failed += 1;
                println!("{}", serde_json::json!({ "image": path, "error": e }));
            }
        }
    }
    anyhow::ensure!(failed == 0, "{failed} of {} images could not be classified", args.images.len());
    Ok(())
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchServeArgs {
    /// A completed job's artifact folder [default: an untrained ResNet-18 at
    /// 64 px with the demo set's 5 classes; speed does not depend on the weights].
    #[arg(long)]
    pub artifact: Option<PathBuf>,
    /// Requests timed one at a time, per server.
    #[arg(long, default_value_t = 300)]
    pub requests: usize,
    /// Concurrent clients in the load phase.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Seconds of the load phase, per server.
    #[arg(long, default_value_t = 15)]
    pub seconds: u64,
    /// Side of the JPEG payloads (demo images scaled up to photo-like sizes).
    #[arg(long, default_value_t = 320)]
    pub payload_size: u32,
    /// libtorch threads for both servers [default: the CPU count].
    #[arg(long)]
    pub threads: Option<u32>,
    /// Replicas of the local endpoint.
    #[arg(long, default_value_t = 1)]
    pub instances: u32,
    #[arg(long, default_value_t = 16)]
    pub max_batch: u32,
    #[arg(long, default_value_t = 0)]
    pub max_wait_ms: u32,
    #[arg(long, default_value = ".venv/bin/python")]
    pub python: PathBuf,
    #[arg(long, default_value = "bench/python_serve.py")]
    pub script: PathBuf,
    /// Work folder (payloads, the default artifact, the bench database).
    #[arg(long, default_value = "data/bench/serve")]
    pub work_dir: PathBuf,
}

/// Latencies in ms and the rate they were served at.
#[derive(Debug)]
pub struct Figures {
    pub p50: f64,
    pub p99: f64,
    pub per_second: f64,
    pub count: usize,
    pub rejected: usize,
}

fn figures(mut ms: Vec<f64>, seconds: f64, rejected: usize) -> Figures {
    ms.sort_by(f64::total_cmp);
    let pick = |p: f64| if ms.is_empty() { 0.0 } else { ms[((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1] };
    Figures { p50: pick(0.5), p99: pick(0.99), per_second: ms.len() as f64 / seconds, count: ms.len(), rejected }
}

fn print(label: &str, f: &Figures) {
    println!(
        "{label}: p50 {:.2} ms, p99 {:.2} ms, {:.1} req/s ({} requests{})",
        f.p50,
        f.p99,
        f.per_second,
        f.count,
        if f.rejected > 0 { format!(", {} answered 429", f.rejected) } else { String::new() }
    );
}

/// An untrained artifact: the real architecture and head, random weights.
fn untrained_artifact(dir: &Path) -> anyhow::Result<()> {
    if dir.join("metadata.json").is_file() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    tch::manual_seed(0);
    let classes: Vec<String> = demo::CLASSES.iter().map(|c| c.to_string()).collect();
    let model = Classifier::new(Architecture::Resnet18, classes.len() as i64, tch::Device::Cpu);
    model.save(&dir.join("model.safetensors"))?;
    let spec = LocalJobSpec { image_size: 64, ..LocalJobSpec::default() };
    let metadata = ArtifactMetadata {
        format: ARTIFACT_FORMAT.into(),
        architecture: Architecture::Resnet18,
        input_size: 64,
        normalization: Normalization { mean: crate::training::pipeline::IMAGENET_MEAN, std: crate::training::pipeline::IMAGENET_STD, resize: "squash".into() },
        class_folders: classes.clone(),
        classes,
        head: "Linear(512,128) → ReLU → Linear(128,5)".into(),
        metrics: FinalMetrics { test_loss: 0.0, test_accuracy: 0.0, test_images: 0, best_epoch: 0, epochs_run: 0, best_valid_loss: None, history: vec![] },
        dataset: DatasetSummary { root: String::new(), digest: String::new(), images: vec![] },
        spec,
        device: "cpu".into(),
        seconds: 0.0,
        trained_on: None,
    };
    std::fs::write(dir.join("metadata.json"), serde_json::to_vec_pretty(&metadata)?)?;
    Ok(())
}

/// Photo-sized JPEGs: demo test images scaled up.
fn payloads(work: &Path, side: u32) -> anyhow::Result<Vec<Vec<u8>>> {
    let demo_dir = work.join("demo-shapes");
    if !demo_dir.join("test").is_dir() {
        demo::write(&demo_dir, DemoOptions { per_class: 40, ..DemoOptions::default() })?;
    }
    let mut out = Vec::new();
    for class in demo::CLASSES {
        let dir = demo_dir.join("test").join(class);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files.into_iter().take(8) {
            let img = image::open(&f)?.resize_exact(side, side * 3 / 4, image::imageops::FilterType::Triangle);
            let mut jpeg = std::io::Cursor::new(Vec::new());
            img.write_to(&mut jpeg, image::ImageFormat::Jpeg)?;
            out.push(jpeg.into_inner());
        }
    }
    Ok(out)
}

fn raw_forward(info: &ModelInfo, payload: &[u8], n: usize) -> anyhow::Result<Figures> {
    let model = info.load().map_err(anyhow::Error::msg)?;
    let input = prepare(payload, info.size()).map_err(anyhow::Error::msg)?;
    for _ in 0..20 {
        super::serving::forward(&model, &input.pixels, 1, info.size()).map_err(anyhow::Error::msg)?;
    }
    let mut ms = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        super::serving::forward(&model, &input.pixels, 1, info.size()).map_err(anyhow::Error::msg)?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(figures(ms, started.elapsed().as_secs_f64(), 0))
}

async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<(u16, f64), String> {
    post_split(client, url, body).await.map(|(status, ms, _)| (status, ms))
}

/// Also the endpoint's own split (model, overhead) when it reports one.
async fn post_split(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<(u16, f64, Option<(f64, f64)>), String> {
    let t = Instant::now();
    let r = client.post(url).header("content-type", "image/jpeg").body(body).send().await.map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<f64>().ok());
    let split = header("x-sagedeck-model-latency-ms").zip(header("x-sagedeck-overhead-latency-ms"));
    r.bytes().await.map_err(|e| e.to_string())?;
    Ok((status, t.elapsed().as_secs_f64() * 1000.0, split))
}

async fn sequential(url: &str, payloads: &[Vec<u8>], n: usize) -> anyhow::Result<Figures> {
    let client = reqwest::Client::new();
    for p in payloads.iter().take(10) {
        post(&client, url, p.clone()).await.map_err(anyhow::Error::msg)?;
    }
    let (mut ms, mut model, mut overhead) = (Vec::with_capacity(n), Vec::new(), Vec::new());
    let started = Instant::now();
    for i in 0..n {
        let (status, took, split) = post_split(&client, url, payloads[i % payloads.len()].clone()).await.map_err(anyhow::Error::msg)?;
        anyhow::ensure!(status == 200, "{url} answered HTTP {status}");
        ms.push(took);
        if let Some((m, o)) = split {
            model.push(m);
            overhead.push(o);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if !model.is_empty() {
        let (m, o) = (figures(model, seconds, 0), figures(overhead, seconds, 0));
        println!(
            "    as the endpoint reports it: model (decode + resize + forward) p50 {:.2} ms · serving overhead (HTTP, queue, batching, answer) p50 {:.2} ms, p99 {:.2} ms",
            m.p50, o.p50, o.p99
        );
    }
    Ok(figures(ms, seconds, 0))
}

async fn concurrent(url: &str, payloads: &[Vec<u8>], clients: usize, seconds: u64) -> anyhow::Result<Figures> {
    let payloads = Arc::new(payloads.to_vec());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (payloads, url) = (payloads.clone(), url.to_string());
        tasks.spawn(async move {
            let client = reqwest::Client::new();
            let (mut ms, mut rejected, mut i) = (Vec::new(), 0usize, c);
            while Instant::now() < deadline {
                match post(&client, &url, payloads[i % payloads.len()].clone()).await? {
                    (200, took) => ms.push(took),
                    (429, _) => rejected += 1,
                    (status, _) => return Err(format!("{url} answered HTTP {status}")),
                }
                i += clients;
            }
            Ok::<_, String>((ms, rejected))
        });
    }
    let (mut all, mut rejected) = (Vec::new(), 0);
    while let Some(done) = tasks.join_next().await {
        let (ms, r) = done?.map_err(anyhow::Error::msg)?;
        all.extend(ms);
        rejected += r;
    }
    Ok(figures(all, started.elapsed().as_secs_f64(), rejected))
}

struct PythonServer(std::process::Child);

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_python(args: &BenchServeArgs, artifact: &Path, threads: u32) -> anyhow::Result<(PythonServer, String)> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(&args.python)
        .arg(&args.script)
        .args(["--artifact", &artifact.display().to_string(), "--threads", &threads.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot run {} {}: {e}", args.python.display(), args.script.display()))?;
    let stdout = child.stdout.take().expect("piped");
    let server = PythonServer(child);
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(url) = line.strip_prefix("listening on ") {
            return Ok((server, format!("{}/invocations", url.trim())));
        }
    }
    anyhow::bail!("the Python server exited before listening")
}

pub async fn run(args: BenchServeArgs) -> anyhow::Result<()> {
    let cpus = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
    let threads = args.threads.unwrap_or(cpus);
    tch::set_num_threads(threads as i32);
    std::fs::create_dir_all(&args.work_dir)?;
    let artifact = match &args.artifact {
        Some(a) => a.clone(),
        None => {
            let dir = args.work_dir.join("untrained-resnet18-64px");
            untrained_artifact(&dir)?;
            dir
        }
    };
    let info = ModelInfo::read(&artifact).map_err(anyhow::Error::msg)?;
    let payloads = payloads(&args.work_dir, args.payload_size)?;
    let mean_bytes = payloads.iter().map(Vec::len).sum::<usize>() / payloads.len();
    println!(
        "bench-serve: {} at {} px from {}, {} libtorch threads, {} JPEG payloads of {}×{} (~{} KB); {} sequential requests, then {} clients for {} s; {} replica(s), batch ≤ {}, wait ≤ {} ms",
        info.metadata.architecture,
        info.size(),
        artifact.display(),
        threads,
        payloads.len(),
        args.payload_size,
        args.payload_size * 3 / 4,
        mean_bytes / 1000,
        args.requests,
        args.clients,
        args.seconds,
        args.instances,
        args.max_batch,
        args.max_wait_ms
    );

    let raw = {
        let (info, payload, n) = (info.clone(), payloads[0].clone(), args.requests);
        tokio::task::spawn_blocking(move || raw_forward(&info, &payload, n)).await??
    };
    print("(a) raw libtorch forward, batch 1", &raw);
    let decode = {
        let (payloads, size) = (payloads.clone(), info.size());
        let started = Instant::now();
        let ms: Vec<f64> = (0..args.requests)
            .map(|i| {
                let t = Instant::now();
                let _ = prepare(&payloads[i % payloads.len()], size);
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        figures(ms, started.elapsed().as_secs_f64(), 0)
    };
    print("(a) decode + resize + normalise of one payload (the endpoint's model work besides the forward)", &decode);

    // The real HTTP path: the invoke route of a hub on loopback.
    let db = args.work_dir.join("bench.db");
    let _ = std::fs::remove_file(&db);
    let pool = crate::store::open(&format!("sqlite://{}", db.display())).await?;
    let aws = Arc::new(crate::aws::Aws::connect(crate::aws::AwsMode::Off).await);
    let journal = crate::journal::Journal::new(pool.clone());
    let fetcher = UrlFetcher { enabled: false, max_bytes: 0, timeout: Duration::from_secs(1) };
    let roots = crate::paths::ReadableRoots::new([args.work_dir.clone()]);
    let imports = args.work_dir.join("imports");
    let hub = EndpointHub::start(pool.clone(), journal, crate::training::jobs::JobStore::new(pool), aws, fetcher, roots, imports).await;
    let batching = Batching { max_batch: args.max_batch, max_wait_ms: args.max_wait_ms, queue_capacity: (args.clients * 4) as u32 };
    hub.serve_unrecorded("bench", info.clone(), args.instances as usize, batching).await.map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, super::invoke::routes(hub)).await });
    let url = format!("http://{addr}/endpoints/bench/invocations");
    let local_seq = sequential(&url, &payloads, args.requests).await?;
    print("(b) local endpoint over HTTP, one request at a time", &local_seq);
    let local_load = concurrent(&url, &payloads, args.clients, args.seconds).await?;
    print(&format!("(b) local endpoint over HTTP, {} concurrent clients", args.clients), &local_load);

    let (python, py_url) = start_python(&args, &artifact, threads)?;
    let py_seq = sequential(&py_url, &payloads, args.requests).await?;
    print("(c) Python reference server, one request at a time", &py_seq);
    let py_load = concurrent(&py_url, &payloads, args.clients, args.seconds).await?;
    print(&format!("(c) Python reference server, {} concurrent clients", args.clients), &py_load);
    drop(python);

    let overhead = local_seq.p50 - raw.p50;
    println!(
        "overhead at batch 1 (p50 endpoint − p50 raw forward): {:.2} ms = {:.1} % of the raw forward (goal ≤ 5 %); less the decode: {:.2} ms = {:.1} %",
        overhead,
        100.0 * overhead / raw.p50,
        overhead - decode.p50,
        100.0 * (overhead - decode.p50) / raw.p50
    );
    println!(
        "throughput under {} clients, local endpoint / Python reference: {:.2}× (goal ≥ 2×); one at a time: {:.2}×",
        args.clients,
        local_load.per_second / py_load.per_second,
        local_seq.per_second / py_seq.per_second
    );
    Ok(())
}

//! The SageMaker half of the Training page (the launch form with its AWS CLI
//! equivalent) and a SageMaker job's page (everything DescribeTrainingJob
//! tells, and the per-host CloudWatch logs merged by time).

use crate::components::duration;
use super::sagemaker::{
    describe_sagemaker_job, launch_sagemaker_job, sagemaker_job_logs, sagemaker_job_metrics, sagemaker_launch_defaults, stop_sagemaker_job,
    HostLogLine, JobMetrics, LaunchDefaults, SageMakerJobDetail, SageMakerJobSpec,
};
use crate::components::chart::{LineChart, Series};
use super::sagemaker::TrainingCode;
use super::spec::{Architecture, FieldError};
use crate::components::{or_dash, short_time, Badge, Card, ConfirmButton, ErrorPanel, Loading, PageHeader};
use crate::names::TrainingJobName;
use crate::ApiError;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};

pub fn sagemaker_tone(status: &str) -> &'static str {
    match status {
        "Completed" => "ok",
        "Failed" => "bad",
        "InProgress" | "Stopping" => "busy",
        _ => "idle",
    }
}

/// The form's text, turned into a spec on submit.
#[derive(Clone, Debug, PartialEq)]
struct LaunchForm {
    name: String,
    code: TrainingCode,
    image: String,
    role_arn: String,
    instance_type: String,
    instance_count: String,
    volume_gb: String,
    max_runtime_seconds: String,
    spot: bool,
    max_wait_seconds: String,
    learning_rate: String,
    batch_size: String,
    epochs: String,
    architecture: Architecture,
    image_size: String,
    patience: String,
    extra: String,
    train_s3: String,
    valid_s3: String,
    test_s3: String,
    output_s3: String,
}

impl LaunchForm {
    fn from_spec(s: &SageMakerJobSpec) -> Self {
        LaunchForm {
            name: s.name.clone(),
            code: s.code,
            image: s.image.clone(),
            role_arn: s.role_arn.clone(),
            instance_type: s.instance_type.clone(),
            instance_count: s.instance_count.to_string(),
            volume_gb: s.volume_gb.to_string(),
            max_runtime_seconds: s.max_runtime_seconds.to_string(),
            spot: s.spot,
            max_wait_seconds: s.max_wait_seconds.map(|w| w.to_string()).unwrap_or_default(),
            learning_rate: s.learning_rate.to_string(),
            batch_size: s.batch_size.to_string(),
            epochs: s.epochs.to_string(),
            architecture: s.architecture,
            image_size: s.image_size.to_string(),
            patience: s.patience.to_string(),
            extra: s.extra_hyperparameters.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n"),
            train_s3: s.train_s3.clone(),
            valid_s3: s.valid_s3.clone(),
            test_s3: s.test_s3.clone(),
            output_s3: s.output_s3.clone(),
        }
    }

    /// Numbers that do not parse are errors of their field; the spec's own
    /// checks add the rest.
    fn to_spec(&self) -> Result<SageMakerJobSpec, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut whole = |field: &'static str, text: &str| match text.trim().parse::<u32>() {
            Ok(v) => v,
            Err(_) => {
                errors.push(FieldError { field, message: "Enter a whole number.".into() });
                0
            }
        };
        let instance_count = whole("instance_count", &self.instance_count);
        let volume_gb = whole("volume_gb", &self.volume_gb);
        let max_runtime_seconds = whole("max_runtime_seconds", &self.max_runtime_seconds);
        let batch_size = whole("batch_size", &self.batch_size);
        let epochs = whole("epochs", &self.epochs);
        let image_size = if self.code == TrainingCode::Sagedeck { whole("image_size", &self.image_size) } else { 224 };
        let patience = if self.code == TrainingCode::Sagedeck { whole("patience", &self.patience) } else { 3 };
        let max_wait_seconds = if self.spot { Some(whole("max_wait_seconds", &self.max_wait_seconds)) } else { None };
        let learning_rate = self.learning_rate.trim().parse::<f64>().unwrap_or_else(|_| {
            errors.push(FieldError { field: "learning_rate", message: "Enter a number such as 0.001.".into() });
            0.001
        });
        let mut extra = Vec::new();
        for line in self.extra.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match line.split_once('=') {
                Some((k, v)) => extra.push((k.trim().to_string(), v.trim().to_string())),
                None => errors.push(FieldError { field: "extra_hyperparameters", message: format!("{line:?}: write key=value, one per line.") }),
            }
        }
        let spec = SageMakerJobSpec {
            name: self.name.trim().to_string(),
            code: self.code,
            image: self.image.trim().to_string(),
            role_arn: self.role_arn.trim().to_string(),
            instance_type: self.instance_type.trim().to_string(),
            instance_count,
            volume_gb,
            max_runtime_seconds,
            spot: self.spot,
            max_wait_seconds,
            learning_rate,
            batch_size,
            epochs,
            architecture: self.architecture,
            image_size,
            patience,
            extra_hyperparameters: extra,
            train_s3: self.train_s3.trim().to_string(),
            valid_s3: self.valid_s3.trim().to_string(),
            test_s3: self.test_s3.trim().to_string(),
            output_s3: self.output_s3.trim().to_string(),
        };
        if let Err(more) = spec.validate() {
            for e in more {
                if !errors.iter().any(|x| x.field == e.field) {
                    errors.push(e);
                }
            }
        }
        if errors.is_empty() {
            Ok(spec)
        } else {
            Err(errors)
        }
    }
}

const TRAINING_INSTANCE_TYPES: &[&str] = &["ml.m5.large", "ml.m5.xlarge", "ml.m5.2xlarge", "ml.c5.2xlarge", "ml.p3.2xlarge", "ml.g4dn.xlarge", "ml.g5.2xlarge"];

/// Shown on the Training page; says plainly when AWS is not configured.
#[component]
pub fn SageMakerLaunch(on_launched: Callback<()>) -> impl IntoView {
    let defaults = Resource::new(|| (), |_| sagemaker_launch_defaults());
    view! {
        <Card title="New SageMaker training job" id="new-sagemaker-job">
            <Suspense fallback=|| view! { <Loading text="Reading the account's roles…"/> }>
                {move || Suspend::new(async move {
                    match defaults.await {
                        Ok(LaunchDefaults { not_configured: Some(why), .. }) => view! { <p class="muted" id="sagemaker-not-configured">{why}</p> }.into_any(),
                        Ok(d) => view! { <LaunchFormView d on_launched/> }.into_any(),
                        Err(error) => view! { <ErrorPanel error/> }.into_any(),
                    }
                })}
            </Suspense>
        </Card>
    }
}

#[component]
fn LaunchFormView(d: LaunchDefaults, on_launched: Callback<()>) -> impl IntoView {
    let form = RwSignal::new(LaunchForm::from_spec(&d.spec));
    // "Run this spec on SageMaker" from a local job: its name, lr, batch size, epochs.
    let query = leptos_router::hooks::use_query_map();
    let from_local = Resource::new(
        move || query.read().get("from_local").and_then(|v| v.parse::<i64>().ok()),
        |id| async move {
            match id {
                Some(id) => super::get_local_job(id).await.ok(),
                None => None,
            }
        },
    );
    // Its dataset's latest completed upload to S3 becomes the channels. A
    // local resource: the browser alone asks (a server-rendered one would
    // shift the ids of the page's other resources between server and browser).
    let uploads = LocalResource::new(move || {
        let dataset = from_local.get().flatten().map(|j| j.spec.dataset);
        async move {
            let dataset = dataset?;
            super::upload::list_dataset_uploads()
                .await
                .ok()
                .and_then(|all| all.into_iter().find(|u| u.dataset == dataset && u.status == super::upload::UploadStatus::Completed))
        }
    });
    Effect::new(move |_| {
        if let Some(Some(job)) = from_local.get() {
            let spec = job.spec;
            form.update(|f| {
                f.name = super::sagemaker::sagemaker_name_for_local(job.summary.id, &spec.name);
                f.code = TrainingCode::Sagedeck;
                f.learning_rate = spec.learning_rate.to_string();
                f.batch_size = spec.batch_size.to_string();
                f.epochs = spec.epochs.to_string();
                f.architecture = spec.architecture;
                f.image_size = spec.image_size.to_string();
                f.patience = spec.patience.to_string();
            });
        }
    });
    Effect::new(move |_| {
        if let Some(Some(upload)) = uploads.get() {
            form.update(|f| {
                for (split, uri) in upload.channels() {
                    match split {
                        "train" => f.train_s3 = uri,
                        "valid" => f.valid_s3 = uri,
                        _ => f.test_s3 = uri,
                    }
                }
                if f.output_s3.is_empty() {
                    let bucket = upload.destination.trim_start_matches("s3://").split('/').next().unwrap_or_default().to_string();
                    f.output_s3 = format!("s3://{bucket}/sagedeck/output");
                }
            });
        }
    });
    let touched = RwSignal::new(false);
    let errors = Signal::derive(move || if touched.get() { form.with(|f| f.to_spec().err().unwrap_or_default()) } else { vec![] });
    let launch = Action::new(|spec: &SageMakerJobSpec| launch_sagemaker_job(spec.clone()));
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(job)) = launch.value().get() {
            on_launched.run(());
            navigate(&format!("/training/sagemaker/{}", job.summary.name), Default::default());
        }
    });
    let region = StoredValue::new(d.region.clone());
    let cli = move || form.with(|f| f.to_spec().map(|s| s.cli_command(&region.get_value())).unwrap_or_else(|_| "Fix the fields marked above to see the command.".into()));
    let sagedeck_code = move || form.with(|f| f.code == TrainingCode::Sagedeck);
    let error_of = move |field: &'static str| {
        move || errors.get().into_iter().find(|e| e.field == field).map(|e| view! { <span class="field-error" data-field=field>{e.message}</span> })
    };
    let text = move |label: &'static str, field: &'static str, get: fn(&LaunchForm) -> String, set: fn(&mut LaunchForm, String), wide: bool| {
        view! {
            <label class=if wide { "field wide" } else { "field" }>
                <span>{label}</span>
                <input name=field prop:value=move || form.with(get) on:input=move |ev| form.update(|f| set(f, event_target_value(&ev)))/>
                {error_of(field)}
            </label>
        }
    };
    let roles = d.roles.clone();
    let no_roles = roles.is_empty();
    view! {
        {move || from_local.get().flatten().map(|job| {
            let channels = match uploads.get().flatten() {
                Some(u) => format!("The channels are its dataset's upload #{} to {}.", u.id, u.destination),
                None => "Its dataset has not been uploaded to S3 yet: upload it below (Datasets in S3), or give the channels.".to_string(),
            };
            view! {
                <p class="notice" id="prefilled-from-local">{format!(
                    "Prefilled from local job #{} {}: architecture, image size, learning rate, batch size, epochs and patience. {channels}",
                    job.summary.id, job.summary.name
                )}</p>
            }
        })}
        <p class="muted">{format!(
            "Region {} · {} role{} SageMaker may assume. The job runs on SageMaker and is billed per instance-second; its logs are read from CloudWatch.",
            d.region, roles.len(), if roles.len() == 1 { "" } else { "s" }
        )}</p>
        <form class="form-grid" on:submit=move |ev| {
            ev.prevent_default();
            touched.set(true);
            if let Ok(spec) = form.with(|f| f.to_spec()) {
                launch.dispatch(spec);
            }
        }>
            {text("Job name", "name", |f| f.name.clone(), |f, v| f.name = v, false)}
            {text("Training image (PyTorch for the region, or a custom URI)", "image", |f| f.image.clone(), |f, v| f.image = v, true)}
            <label class="field checkbox wide">
                <input type="checkbox" name="own_code" prop:checked=move || !sagedeck_code() on:change=move |ev| form.update(|f| {
                    f.code = if event_target_checked(&ev) { TrainingCode::Image } else { TrainingCode::Sagedeck };
                })/>
                <span>"The image trains by itself (its own entry point). Off: Sagedeck's train.py runs in it, uploaded next to the output as sourcedir.tar.gz, with metric definitions for its loss and accuracy."</span>
            </label>
            {move || sagedeck_code().then(|| view! {
                <label class="field">
                    <span>"Architecture (arch)"</span>
                    <select name="architecture" on:change=move |ev| form.update(|f| f.architecture = Architecture::parse(&event_target_value(&ev)).unwrap_or(Architecture::Resnet50))>
                        {Architecture::ALL.iter().map(|a| view! { <option value=a.as_str() selected=form.with_untracked(|f| f.architecture == *a)>{a.label()}</option> }).collect_view()}
                    </select>
                </label>
                {text("Image size, px (image-size)", "image_size", |f| f.image_size.clone(), |f, v| f.image_size = v, false)}
                {text("Early-stopping patience, epochs (patience)", "patience", |f| f.patience.clone(), |f, v| f.patience = v, false)}
            })}
            <label class="field wide">
                <span>"Execution role"</span>
                <select name="role_arn" on:change=move |ev| form.update(|f| f.role_arn = event_target_value(&ev))>
                    {roles.into_iter().map(|r| {
                        let selected = form.with_untracked(|f| f.role_arn == r);
                        view! { <option value=r.clone() selected=selected>{r.clone()}</option> }
                    }).collect_view()}
                </select>
                {no_roles.then(|| view! { <span class="field-error" data-field="role_arn">"No role in this account trusts sagemaker.amazonaws.com: create one first."</span> })}
                {error_of("role_arn")}
            </label>
            <label class="field">
                <span>"Instance type"</span>
                <select name="instance_type" on:change=move |ev| form.update(|f| f.instance_type = event_target_value(&ev))>
                    {TRAINING_INSTANCE_TYPES.iter().map(|t| view! { <option value=*t selected=form.with_untracked(|f| f.instance_type == *t)>{*t}</option> }).collect_view()}
                </select>
            </label>
            {text("Instances (1 = single, more = multi-instance)", "instance_count", |f| f.instance_count.clone(), |f, v| f.instance_count = v, false)}
            {text("Volume (GB)", "volume_gb", |f| f.volume_gb.clone(), |f, v| f.volume_gb = v, false)}
            {text("Max runtime (s)", "max_runtime_seconds", |f| f.max_runtime_seconds.clone(), |f, v| f.max_runtime_seconds = v, false)}
            <label class="field checkbox">
                <input type="checkbox" name="spot" prop:checked=move || form.with(|f| f.spot) on:change=move |ev| form.update(|f| f.spot = event_target_checked(&ev))/>
                <span>"Managed spot training"</span>
            </label>
            {move || form.with(|f| f.spot).then(|| text("Max wait for spot capacity (s)", "max_wait_seconds", |f| f.max_wait_seconds.clone(), |f, v| f.max_wait_seconds = v, false))}
            {text("Learning rate (lr)", "learning_rate", |f| f.learning_rate.clone(), |f, v| f.learning_rate = v, false)}
            {text("Batch size (batch-size)", "batch_size", |f| f.batch_size.clone(), |f, v| f.batch_size = v, false)}
            {text("Epochs", "epochs", |f| f.epochs.clone(), |f, v| f.epochs = v, false)}
            <label class="field wide">
                <span>"More hyperparameters (key=value, one per line)"</span>
                <textarea name="extra" rows="2" prop:value=move || form.with(|f| f.extra.clone()) on:input=move |ev| form.update(|f| f.extra = event_target_value(&ev))></textarea>
                {error_of("extra_hyperparameters")}
            </label>
            {text("Train channel (S3)", "train_s3", |f| f.train_s3.clone(), |f, v| f.train_s3 = v, true)}
            {text("Valid channel (S3, optional)", "valid_s3", |f| f.valid_s3.clone(), |f, v| f.valid_s3 = v, true)}
            {text("Test channel (S3, optional)", "test_s3", |f| f.test_s3.clone(), |f, v| f.test_s3 = v, true)}
            {text("Output path (S3)", "output_s3", |f| f.output_s3.clone(), |f, v| f.output_s3 = v, true)}
            <div class="form-actions">
                <button type="submit" class="btn btn-primary" id="launch-sagemaker-job" disabled=move || launch.pending().get()>
                    {move || if launch.pending().get() { "Creating the training job…" } else { "Launch on SageMaker" }}
                </button>
            </div>
        </form>
        {move || launch.value().get().and_then(Result::err).map(|error| view! { <div id="launch-error"><ErrorPanel error/></div> })}
        <details class="cli">
            <summary>"The same call with the AWS CLI"</summary>
            <pre id="cli-preview">{cli}</pre>
        </details>
    }
}

#[component]
pub fn SageMakerJobPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.read().get("name").unwrap_or_default();
    // The route's name, checked once: a bad one is the page's error.
    let job_name = move || TrainingJobName::parse(&name());
    let tick = RwSignal::new(0u32);
    let job = Resource::new(move || (job_name(), tick.get()), |(n, _)| async move { describe_sagemaker_job(n?).await });
    let metrics = Resource::new(move || (job_name(), tick.get()), |(n, _)| async move { sagemaker_job_metrics(n?).await });
    let stop = Action::new(|n: &String| {
        let n = TrainingJobName::parse(n);
        async move { stop_sagemaker_job(n?).await }
    });
    Effect::new(move |_| {
        if stop.value().get().is_some_and(|r| r.is_ok()) {
            tick.update(|n| *n += 1);
        }
    });
    crate::components::poll::follow(job, tick, std::time::Duration::from_secs(5), |j: &SageMakerJobDetail| {
        !matches!(j.summary.status.as_str(), "Completed" | "Failed" | "Stopped")
    });
    view! {
        <PageHeader title=format!("SageMaker job {}", params.read_untracked().get("name").unwrap_or_default())>
            <A href="/training" attr:class="btn">"← All training"</A>
            <A href=move || format!("/training?from_sagemaker={}", name()) attr:class="btn" attr:id="run-locally">"Run locally"</A>
        </PageHeader>
        {move || stop.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
        <Transition fallback=|| view! { <Loading/> }>
            {move || Suspend::new(async move {
                match job.await {
                    Ok(detail) => {
                        let n = detail.summary.name.clone();
                        let actions = if detail.can_stop() {
                            view! {
                                <div class="actions" id="job-actions">
                                    <ConfirmButton
                                        label="Stop"
                                        question=format!("Stop {n}? SageMaker ends it within minutes, keeps the model written so far, and stops billing.")
                                        on_confirm=Callback::new(move |_| { stop.dispatch(n.clone()); })
                                        needs="training/sagemaker/stop"
                                        pending=stop.pending()
                                        danger=true
                                    />
                                </div>
                            }.into_any()
                        } else if detail.summary.status == "Completed" && detail.model_artifact.is_some() {
                            view! {
                                <div class="actions" id="job-actions">
                                    <A href=format!("/endpoints?from_sagemaker={n}#deploy-local") attr:class="btn" attr:id="deploy-here">"Serve on a local endpoint"</A>
                                    <A href=format!("/endpoints?from_sagemaker={n}#deploy-sagemaker") attr:class="btn" attr:id="deploy-sagemaker">"Deploy on SageMaker"</A>
                                </div>
                            }.into_any()
                        } else {
                            ().into_any()
                        };
                        view! { {actions}<JobFacts detail/> }.into_any()
                    }
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Transition>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                metrics.await.ok().map(|m| view! { <MetricCharts m/> })
            })}
        </Transition>
        {move || job_name().ok().map(|name| view! { <LogView name/> })}
    }
}

#[component]
fn JobFacts(detail: SageMakerJobDetail) -> impl IntoView {
    let s = detail.summary.clone();
    view! {
        <section class="card" id="sagemaker-job" data-status=s.status.clone()>
            <dl class="grid">
                <dt>"Status"</dt><dd><Badge text=s.status.clone() tone=sagemaker_tone(&s.status)/>" "{s.secondary_status.clone().unwrap_or_default()}</dd>
                <dt>"Instances"</dt><dd id="job-instances">{format!("{} × {}", s.instance_count, s.instance_type)}</dd>
                <dt>"Created"</dt><dd>{s.created_at.as_deref().map(short_time).unwrap_or_default()}</dd>
                <dt>"Ended"</dt><dd>{or_dash(s.ended_at.as_deref().map(short_time))}</dd>
                <dt>"Training time"</dt><dd>{s.training_seconds.map(|t| duration(t as f64)).unwrap_or_else(|| "—".into())}</dd>
                <dt>"Billable"</dt><dd>{s.billable_seconds.map(|t| format!("{t} s")).unwrap_or_else(|| "—".into())}</dd>
                <dt>"Image"</dt><dd><code>{or_dash(detail.image.clone())}</code></dd>
                <dt>"Role"</dt><dd><code>{or_dash(detail.role_arn.clone())}</code></dd>
                <dt>"Output"</dt><dd><code>{or_dash(detail.output_path.clone())}</code></dd>
                <dt>"Model artifact"</dt><dd><code>{or_dash(detail.model_artifact.clone())}</code></dd>
                <dt>"Volume / max runtime"</dt><dd>{format!("{} GB / {}", detail.volume_gb.unwrap_or(0), detail.max_runtime_seconds.map(|t| duration(f64::from(t))).unwrap_or_default())}</dd>
                <dt>"Spot"</dt><dd>{if detail.spot { "yes" } else { "no" }}</dd>
            </dl>
            {detail.failure_reason.clone().map(|f| view! { <div class="error-panel" role="alert"><strong>"Failed"</strong><p>{f}</p></div> })}
            <div class="two-columns">
                <div>
                    <h3>"Hyperparameters"</h3>
                    <table class="table compact" id="hyperparameters">
                        <tbody>{detail.hyperparameters.iter().map(|(k, v)| view! { <tr><td>{k.clone()}</td><td><code>{v.clone()}</code></td></tr> }).collect_view()}</tbody>
                    </table>
                    <h3>"Input channels"</h3>
                    <table class="table compact" id="channels">
                        <tbody>{detail.channels.iter().map(|(k, v)| view! { <tr><td>{k.clone()}</td><td><code>{v.clone()}</code></td></tr> }).collect_view()}</tbody>
                    </table>
                </div>
                <div>
                    <h3>"Status transitions"</h3>
                    {if detail.transitions.is_empty() {
                        view! { <p class="muted">"AWS reported none yet."</p> }.into_any()
                    } else {
                        view! {
                            <ol class="transitions">
                                {detail.transitions.iter().map(|t| view! {
                                    <li><strong>{t.status.clone()}</strong>" "{t.started_at.as_deref().map(short_time).unwrap_or_default()}
                                        {t.message.clone().map(|m| view! { <br/><span class="muted">{m}</span> })}</li>
                                }).collect_view()}
                            </ol>
                        }.into_any()
                    }}
                    {(!s.final_metrics.is_empty()).then(|| view! {
                        <h3>"Final metrics"</h3>
                        <table class="table compact"><tbody>{s.final_metrics.iter().map(|(k, v)| view! { <tr><td>{k.clone()}</td><td>{format!("{v:.4}")}</td></tr> }).collect_view()}</tbody></table>
                    })}
                </div>
            </div>
        </section>
    }
}

/// The training metrics the job's definitions read, a chart per kind
/// (loss, accuracy), a line per metric and host.
#[component]
fn MetricCharts(m: JobMetrics) -> impl IntoView {
    let classes = ["series-a", "series-b", "series-c", "series-d", "series-e", "series-f"];
    let hosts: Vec<String> = {
        let mut h: Vec<String> = m.series.iter().map(|s| s.host.clone()).collect();
        h.sort();
        h.dedup();
        h
    };
    let chart = |kind: &str| -> Vec<Series> {
        m.series
            .iter()
            .filter(|s| s.name.ends_with(kind) && !s.name.starts_with("test"))
            .enumerate()
            .map(|(i, s)| Series {
                name: if hosts.len() > 1 { format!("{} · {}", s.name, s.host) } else { s.name.clone() },
                class: classes[i % classes.len()],
                points: s.points.clone(),
            })
            .collect()
    };
    let (loss, accuracy) = (chart(":loss"), chart(":accuracy"));
    view! {
        <section class="card" id="training-metrics">
            <h2>"Training metrics "<span class="muted">{format!("from {}", m.source)}</span></h2>
            {m.note.clone().map(|n| view! { <p class="muted" id="metrics-note">{n}</p> })}
            {(!m.series.is_empty()).then(|| view! {
                <div class="charts">
                    <LineChart title="Loss" series=loss x_label="epoch"/>
                    <LineChart title="Accuracy" series=accuracy x_label="epoch" percent=true/>
                </div>
            })}
            {(!m.last.is_empty()).then(|| view! {
                <table class="table compact" id="last-metrics">
                    <tbody>{m.last.iter().map(|(k, v)| view! { <tr><td>{k.clone()}</td><td>{format!("{v:.4}")}</td></tr> }).collect_view()}</tbody>
                </table>
            })}
        </section>
    }
}

/// A colour class per host, stable across refreshes.
fn host_class(hosts: &[String], host: &str) -> String {
    format!("host-{}", hosts.iter().position(|h| h == host).unwrap_or(0) % 6)
}

#[component]
fn LogView(name: TrainingJobName) -> impl IntoView {
    let name = StoredValue::new(name);
    let lines = RwSignal::new(Vec::<HostLogLine>::new());
    let hosts = RwSignal::new(Vec::<String>::new());
    let last_at = RwSignal::new(0i64);
    let shown_hosts = RwSignal::new(None::<String>);
    let search = RwSignal::new(String::new());
    let follow = RwSignal::new(true);
    let error = RwSignal::new(None::<ApiError>);
    let tick = RwSignal::new(0u32);
    let fetch = Action::new(move |after: &i64| sagemaker_job_logs(name.get_value(), *after));
    Effect::new(move |_| {
        tick.get();
        fetch.dispatch(last_at.get_untracked());
    });
    Effect::new(move |_| {
        if let Some(result) = fetch.value().get() {
            match result {
                Ok(logs) => {
                    error.set(None);
                    if !logs.lines.is_empty() {
                        last_at.set(logs.last_at);
                        lines.update(|l| l.extend(logs.lines));
                        hosts.update(|h| {
                            h.extend(logs.hosts);
                            h.sort();
                            h.dedup();
                        });
                    }
                }
                Err(e) => error.set(Some(e)),
            }
            if follow.get_untracked() {
                if let Ok(t) = set_timeout_with_handle(move || tick.update(|n| *n += 1), std::time::Duration::from_secs(3)) {
                    on_cleanup(move || t.clear());
                }
            }
        }
    });
    let visible = move || {
        let needle = search.get().to_lowercase();
        let only = shown_hosts.get();
        lines.with(|l| {
            l.iter()
                .filter(|line| only.as_ref().is_none_or(|h| *h == line.host))
                .filter(|line| needle.is_empty() || line.message.to_lowercase().contains(&needle))
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    let download = move || {
        let text: String = visible().iter().map(|l| format!("{} {} {}\n", l.at, l.host, l.message)).collect();
        let encoded = percent_encoding::utf8_percent_encode(&text, percent_encoding::NON_ALPHANUMERIC);
        format!("data:text/plain;charset=utf-8,{encoded}")
    };
    view! {
        <section class="card" id="logs">
            <h2>"Logs "<span class="muted">"CloudWatch /aws/sagemaker/TrainingJobs, one stream per host"</span></h2>
            <div class="log-tools">
                <span class="host-filter">
                    <button class=move || if shown_hosts.get().is_none() { "btn small active" } else { "btn small" } on:click=move |_| shown_hosts.set(None)>"All hosts"</button>
                    {move || hosts.get().into_iter().map(|h| {
                        let (h1, h2, label, data) = (h.clone(), h.clone(), h.clone(), h.clone());
                        let class = host_class(&hosts.get_untracked(), &h);
                        view! {
                            <button data-host=data class=move || format!("btn small {class} {}", if shown_hosts.get().as_deref() == Some(h1.as_str()) { "active" } else { "" })
                                on:click=move |_| shown_hosts.set(Some(h2.clone()))>{label}</button>
                        }
                    }).collect_view()}
                </span>
                <input name="log-search" placeholder="Search the log" prop:value=move || search.get() on:input=move |ev| search.set(event_target_value(&ev))/>
                <label class="checkbox"><input type="checkbox" name="follow" prop:checked=move || follow.get() on:change=move |ev| {
                    follow.set(event_target_checked(&ev));
                    if event_target_checked(&ev) { tick.update(|n| *n += 1); }
                }/>" Follow"</label>
                <a class="btn small" id="download-log" download=move || format!("{}.log", name.get_value()) href=download>"Download"</a>
            </div>
            {move || error.get().map(|error| view! { <ErrorPanel error/> })}
            {move || {
                let shown = visible();
                let count = shown.len();
                let all = hosts.get();
                if shown.is_empty() {
                    view! { <p class="muted" id="log-empty">{if lines.with(Vec::is_empty) { "No log lines yet: SageMaker writes them once the instances start." } else { "No line matches." }}</p> }.into_any()
                } else {
                    view! {
                        <pre class="log merged" id="merged-log" data-lines=count>
                            {shown.into_iter().map(|l| {
                                let class = host_class(&all, &l.host);
                                view! { <div class=format!("log-line {class}") data-host=l.host.clone()><span class="log-host">{l.host.clone()}</span>" "{l.message}</div> }
                            }).collect_view()}
                        </pre>
                    }.into_any()
                }
            }}
        </section>
    }
}

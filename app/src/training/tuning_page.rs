//! Hyperparameter tuning on the Training page (the list and the launch form)
//! and a tuning job's page (its ranges and the training jobs it ran, the best
//! marked).

use super::sagemaker::sagemaker_launch_defaults;
use super::sagemaker_page::sagemaker_tone;
use super::spec::FieldError;
use super::sagemaker::{TrainingCode, METRIC_DEFINITIONS};
use super::tuning::{describe_tuning_job, launch_tuning_job, list_tuning_jobs, TuningJobDetail, TuningJobSummary, TuningSpec};
use crate::components::{count_of, or_dash, short_time, Badge, Card, DataTable, ErrorPanel, Loaded, Loading, PageHeader};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};

#[component]
pub fn TuningSection() -> impl IntoView {
    let refresh = RwSignal::new(0u32);
    // The page of tuning jobs shown: None for the newest.
    let older = RwSignal::new(None::<String>);
    let status = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let list = Resource::new(
        move || (refresh.get(), older.get(), status.get(), name.get()),
        |(_, o, s, n)| list_tuning_jobs(o, Some(s), Some(n)),
    );
    let defaults = Resource::new(|| (), |_| sagemaker_launch_defaults());
    view! {
        <Card title="Hyperparameter tuning on SageMaker" id="tuning">
            <div class="filters">
                <select name="tuning-status-filter" on:change=move |ev| { older.set(None); status.set(event_target_value(&ev)); }>
                    <option value="">"Any status"</option>
                    {super::history::STATUS_FILTERS.map(|s| view! { <option value=s>{s}</option> }).collect_view()}
                </select>
                <input name="tuning-name-filter" placeholder="Name contains…" maxlength="32" prop:value=move || name.get()
                    on:input=move |ev| { older.set(None); name.set(event_target_value(&ev)); }/>
            </div>
            <Transition fallback=|| view! { <Loading/> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(page) => {
                            let filtered = !status.get_untracked().is_empty() || !name.get_untracked().is_empty();
                            if filtered && page.jobs.is_empty() {
                                return view! { <p class="empty" id="tuning-count">"No tuning job matches these filters."</p> }.into_any();
                            }
                            let count = count_of(page.jobs.len(), page.total, "tuning job", "tuning jobs");
                            let next = page.older.clone();
                            let pager = (filtered || page.total > page.jobs.len() as u64).then(|| view! {
                                <nav class="pager">
                                    <span class="muted" id="tuning-count">{count}</span>
                                    {older.get_untracked().is_some().then(|| view! { <button class="btn btn-small" on:click=move |_| older.set(None)>"Newest"</button> })}
                                    {next.map(|c| view! { <button class="btn btn-small" id="tuning-older" on:click=move |_| older.set(Some(c.clone()))>"Older →"</button> })}
                                </nav>
                            });
                            view! { {pager}<TuningTable jobs=page.jobs/> }.into_any()
                        }
                        Err(error) => view! { <ErrorPanel error/> }.into_any(),
                    }
                })}
            </Transition>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    defaults.await.ok().filter(|d| d.not_configured.is_none()).map(|d| view! { <TuningForm spec=TuningSpec::example(d.spec) roles=d.roles region=d.region on_launched=Callback::new(move |_| refresh.update(|n| *n += 1))/> })
                })}
            </Suspense>
        </Card>
    }
}

#[component]
fn TuningTable(jobs: Vec<TuningJobSummary>) -> impl IntoView {
    if jobs.is_empty() {
        return view! { <p class="empty">"No tuning jobs in this account and region yet."</p> }.into_any();
    }
    view! {
        <DataTable id="tuning-jobs" headers=&["Tuning job", "Status", "Objective", "Trials", "Best", "Created"]>
            {jobs.into_iter().map(|j| {
                let href = format!("/training/tuning/{}", j.name);
                let (row, label) = (j.name.clone(), j.name.clone());
                view! {
                    <tr data-tuning-job=row data-status=j.status.clone()>
                        <td><A href=href>{label}</A></td>
                        <td><Badge text=j.status.clone() tone=sagemaker_tone(&j.status)/></td>
                        <td>{j.objective.clone()}</td>
                        <td>{format!("{} done, {} running, {} failed of {} ({} at a time)", j.completed, j.in_progress, j.failed, j.max_jobs, j.max_parallel)}</td>
                        <td>{or_dash(j.best_training_job.clone().map(|b| format!("{b}{}", j.best_value.map(|v| format!(" ({v:.4})")).unwrap_or_default())))}</td>
                        <td>{j.created_at.as_deref().map(short_time).unwrap_or_default()}</td>
                    </tr>
                }
            }).collect_view()}
        </DataTable>
    }
    .into_any()
}

#[component]
fn TuningForm(spec: TuningSpec, roles: Vec<String>, region: String, on_launched: Callback<()>) -> impl IntoView {
    let spec = RwSignal::new(spec);
    let batch_text = RwSignal::new(spec.with_untracked(|s| s.batch_sizes.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")));
    let numbers = RwSignal::new(spec.with_untracked(|s| (s.lr_min.to_string(), s.lr_max.to_string(), s.max_jobs.to_string(), s.max_parallel.to_string(), s.base.instance_count.to_string())));
    let touched = RwSignal::new(false);
    let to_spec = move || -> Result<TuningSpec, Vec<FieldError>> {
        let mut s = spec.get();
        let mut errors = Vec::new();
        let (lr_min, lr_max, max_jobs, parallel, count) = numbers.get();
        s.lr_min = lr_min.trim().parse().unwrap_or(f64::NAN);
        s.lr_max = lr_max.trim().parse().unwrap_or(f64::NAN);
        s.max_jobs = max_jobs.trim().parse().unwrap_or(0);
        s.max_parallel = parallel.trim().parse().unwrap_or(0);
        s.base.instance_count = count.trim().parse().unwrap_or(0);
        s.batch_sizes = Vec::new();
        for part in batch_text.get().split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.parse() {
                Ok(b) => s.batch_sizes.push(b),
                Err(_) => errors.push(FieldError { field: "batch_sizes", message: format!("{part:?} is not a whole number.") }),
            }
        }
        if let Err(more) = s.validate() {
            for e in more {
                if !errors.iter().any(|x| x.field == e.field) {
                    errors.push(e);
                }
            }
        }
        if errors.is_empty() { Ok(s) } else { Err(errors) }
    };
    let errors = Signal::derive(move || if touched.get() { to_spec().err().unwrap_or_default() } else { vec![] });
    let error_of = move |field: &'static str| move || errors.get().into_iter().filter(|e| e.field == field).map(|e| view! { <span class="field-error" data-field=field>{e.message}</span> }).collect_view();
    let launch = Action::new(|s: &TuningSpec| launch_tuning_job(s.clone()));
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(job)) = launch.value().get() {
            on_launched.run(());
            navigate(&format!("/training/tuning/{}", job.summary.name), Default::default());
        }
    });
    let region = StoredValue::new(region);
    let cli = move || to_spec().map(|s| s.cli_command(&region.get_value())).unwrap_or_else(|_| "Fix the fields marked above to see the command.".into());
    let sagedeck_code = move || spec.with(|s| s.base.code == TrainingCode::Sagedeck);
    macro_rules! field {
        ($label:expr, $name:expr, $get:expr, $set:expr) => {
            view! {
                <label class="field">
                    <span>{$label}</span>
                    <input name=$name prop:value=move || spec.with($get) on:input=move |ev| spec.update(|s| ($set)(s, event_target_value(&ev)))/>
                    {error_of($name)}
                </label>
            }
        };
    }
    macro_rules! number {
        ($label:expr, $name:expr, $idx:tt, $field:expr) => {
            view! {
                <label class="field">
                    <span>{$label}</span>
                    <input name=$name prop:value=move || numbers.with(|n| n.$idx.clone()) on:input=move |ev| numbers.update(|n| n.$idx = event_target_value(&ev))/>
                    {error_of($field)}
                </label>
            }
        };
    }
    view! {
        <details class="tuning-form" id="new-tuning-job">
            <summary>"New tuning job: learning rate (continuous) × batch size (categorical)"</summary>
            <form class="form-grid" on:submit=move |ev| {
                ev.prevent_default();
                touched.set(true);
                if let Ok(s) = to_spec() {
                    launch.dispatch(s);
                }
            }>
                {field!("Tuning job name (≤ 32)", "tuning_name", |s: &TuningSpec| s.name.clone(), |s: &mut TuningSpec, v: String| s.name = v)}
                {number!("Learning rate from", "lr_min", 0, "lr_range")}
                {number!("to", "lr_max", 1, "lr_range")}
                <label class="field checkbox">
                    <input type="checkbox" name="lr_log_scale" prop:checked=move || spec.with(|s| s.lr_log_scale) on:change=move |ev| spec.update(|s| s.lr_log_scale = event_target_checked(&ev))/>
                    <span>"Logarithmic scale"</span>
                </label>
                <label class="field">
                    <span>"Batch sizes"</span>
                    <input name="batch_sizes" prop:value=move || batch_text.get() on:input=move |ev| batch_text.set(event_target_value(&ev))/>
                    {error_of("batch_sizes")}
                </label>
                <label class="field checkbox wide">
                    <input type="checkbox" name="tuning_own_code" prop:checked=move || !sagedeck_code() on:change=move |ev| spec.update(|s| {
                        s.base.code = if event_target_checked(&ev) { TrainingCode::Image } else { TrainingCode::Sagedeck };
                    })/>
                    <span>"The image trains by itself (its own entry point and metrics); off: Sagedeck's train.py"</span>
                </label>
                {move || if sagedeck_code() {
                    view! {
                        <label class="field wide">
                            <span>"Objective: a metric train.py prints"</span>
                            <select name="objective_metric" on:change=move |ev| {
                                let name = event_target_value(&ev);
                                spec.update(|s| {
                                    if let Some(d) = METRIC_DEFINITIONS.iter().find(|d| d.name == name) {
                                        s.objective_metric = d.name.into();
                                        s.metric_regex = d.regex.into();
                                        s.minimize = d.minimize;
                                    }
                                });
                            }>
                                {METRIC_DEFINITIONS.iter().map(|d| {
                                    let selected = spec.with_untracked(|s| s.objective_metric == d.name);
                                    let label = format!("{} ({})", d.name, if d.minimize { "minimised" } else { "maximised" });
                                    view! { <option value=d.name selected=selected>{label}</option> }
                                }).collect_view()}
                            </select>
                            <span class="muted" id="objective-regex">{move || spec.with(|s| format!("Read from the log with {}", s.metric_regex))}</span>
                            {error_of("objective_metric")}
                        </label>
                    }.into_any()
                } else {
                    view! {
                        {field!("Objective metric", "objective_metric", |s: &TuningSpec| s.objective_metric.clone(), |s: &mut TuningSpec, v: String| s.objective_metric = v)}
                        {field!("Its regex in the training log", "metric_regex", |s: &TuningSpec| s.metric_regex.clone(), |s: &mut TuningSpec, v: String| s.metric_regex = v)}
                        <label class="field checkbox">
                            <input type="checkbox" name="minimize" prop:checked=move || spec.with(|s| s.minimize) on:change=move |ev| spec.update(|s| s.minimize = event_target_checked(&ev))/>
                            <span>"Minimise (off: maximise)"</span>
                        </label>
                    }.into_any()
                }}
                {number!("Max training jobs", "max_jobs", 2, "max_jobs")}
                {number!("At a time", "max_parallel", 3, "max_parallel")}
                <label class="field wide">
                    <span>"Execution role"</span>
                    <select name="tuning_role" on:change=move |ev| spec.update(|s| s.base.role_arn = event_target_value(&ev))>
                        {roles.into_iter().map(|r| view! { <option value=r.clone()>{r.clone()}</option> }).collect_view()}
                    </select>
                    {error_of("role_arn")}
                </label>
                {field!("Instance type", "tuning_instance_type", |s: &TuningSpec| s.base.instance_type.clone(), |s: &mut TuningSpec, v: String| s.base.instance_type = v)}
                {number!("Instances per trial", "tuning_instance_count", 4, "instance_count")}
                {field!("Train channel (S3)", "tuning_train_s3", |s: &TuningSpec| s.base.train_s3.clone(), |s: &mut TuningSpec, v: String| s.base.train_s3 = v)}
                {field!("Valid channel (S3, optional)", "tuning_valid_s3", |s: &TuningSpec| s.base.valid_s3.clone(), |s: &mut TuningSpec, v: String| s.base.valid_s3 = v)}
                {field!("Output path (S3)", "tuning_output_s3", |s: &TuningSpec| s.base.output_s3.clone(), |s: &mut TuningSpec, v: String| s.base.output_s3 = v)}
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary" id="launch-tuning-job" disabled=move || launch.pending().get()>
                        {move || if launch.pending().get() { "Creating the tuning job…" } else { "Launch tuning job" }}
                    </button>
                </div>
            </form>
            {move || errors.get().into_iter().find(|e| matches!(e.field, "train_s3" | "output_s3" | "valid_s3" | "image")).map(|e| view! { <p class="field-error">{e.message}</p> })}
            {move || launch.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
            <details class="cli">
                <summary>"The same call with the AWS CLI"</summary>
                <pre id="tuning-cli-preview">{cli}</pre>
            </details>
        </details>
    }
}

#[component]
pub fn TuningJobPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.read().get("name").unwrap_or_default();
    let job = Resource::new(move || crate::names::TrainingJobName::parse(&name()), |name| async move { describe_tuning_job(name?).await });
    view! {
        <PageHeader title=format!("Tuning job {}", params.read_untracked().get("name").unwrap_or_default())>
            <A href="/training" attr:class="btn">"← All training"</A>
        </PageHeader>
        <Loaded resource=job ok=move |detail| view! { <TuningFacts detail/> }/>
    }
}

#[component]
fn TuningFacts(detail: TuningJobDetail) -> impl IntoView {
    let s = detail.summary.clone();
    let trials = detail.trials.clone();
    view! {
        <section class="card" id="tuning-job" data-status=s.status.clone()>
            <dl class="grid">
                <dt>"Status"</dt><dd><Badge text=s.status.clone() tone=sagemaker_tone(&s.status)/></dd>
                <dt>"Strategy"</dt><dd>{s.strategy.clone()}</dd>
                <dt>"Objective"</dt><dd>{s.objective.clone()}</dd>
                <dt>"Trials"</dt><dd>{format!("{} done, {} running, {} failed of {} ({} at a time)", s.completed, s.in_progress, s.failed, s.max_jobs, s.max_parallel)}</dd>
                <dt>"Best"</dt><dd id="best-trial">{or_dash(s.best_training_job.clone())}</dd>
                <dt>"Created"</dt><dd>{s.created_at.as_deref().map(short_time).unwrap_or_default()}</dd>
            </dl>
            <h3>"Ranges"</h3>
            <ul id="ranges">{detail.ranges.iter().map(|r| view! { <li><code>{r.clone()}</code></li> }).collect_view()}</ul>
            // Only a failed job's reason is a failure; SageMaker may send an empty one.
            {detail.failure_reason.clone().filter(|f| !f.trim().is_empty() && s.status == "Failed").map(|f| view! {
                <div class="error-panel" role="alert"><strong>"Failed"</strong><p>{f}</p></div>
            })}
            <h3>"Training jobs it ran"</h3>
            {detail.trials_note.clone().map(|n| view! { <p class="muted" id="trials-note">{n}</p> })}
            {if trials.is_empty() {
                let said = if s.completed + s.in_progress + s.failed > 0 {
                    "SageMaker counts trials, but their list could not be read (see above)."
                } else {
                    "None yet."
                };
                view! { <p class="empty" id="no-trials">{said}</p> }.into_any()
            } else {
                view! {
                    <DataTable id="trials" headers=&["Training job", "Status", "Tuned values", "Objective"]>
                        {trials.into_iter().map(|t| view! {
                            <tr class=if t.best { "best" } else { "" } data-best=t.best.to_string()>
                                <td><A href=format!("/training/sagemaker/{}", t.name)>{t.name.clone()}</A>{t.best.then(|| view! { " "<span class="badge badge-ok">"best"</span> })}</td>
                                <td><Badge text=t.status.clone() tone=sagemaker_tone(&t.status)/></td>
                                <td>{t.hyperparameters.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")}</td>
                                <td>{t.objective_value.map(|v| format!("{v:.4}")).unwrap_or_else(|| "—".into())}</td>
                            </tr>
                        }).collect_view()}
                    </DataTable>
                }.into_any()
            }}
        </section>
    }
}

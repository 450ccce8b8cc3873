//! The Training page: local jobs, the "New local training job" form with the
//! dataset check and the demo set.

use super::spec::{FieldError, FormFields};
use super::history::{list_job_history, HistoryRow, JobHistoryPage, JobQuery, RunsOn, STATUS_FILTERS};
use super::{check_dataset, create_local_job, get_training_defaults, make_demo_dataset, Architecture, DatasetReport, JobStatus, TrainingDefaults};
use super::sagemaker_page::{sagemaker_tone, SageMakerLaunch};
use super::dataset_view::DatasetReportView;
use crate::components::{percent, short_time, Badge, Card, ErrorPanel, Loaded, Loading, PageHeader};
use crate::list_view::ListPager;
use crate::ApiError;
use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn TrainingPage() -> impl IntoView {
    let refresh = RwSignal::new(0u32);
    // The filters and the page live in the URL, so a view can be shared.
    let url = leptos_router::hooks::use_query_map();
    let query = Memo::new(move |_| url.with(|m| JobQuery::from_pairs(|k| m.get(k))));
    let history = Resource::new(move || (refresh.get(), query.get()), |(_, q)| list_job_history(q));
    // SageMaker rows come from the server's cache (one poller for every tab):
    // read again every 10 s, every 2 s while a local job on the page runs.
    Effect::new(move |_| {
        let busy = history
            .get()
            .and_then(Result::ok)
            .is_some_and(|p| p.rows.iter().any(|r| matches!(r, HistoryRow::Local(j) if !j.status.is_terminal())));
        let every = if busy { 2 } else { 10 };
        if let Ok(t) = set_timeout_with_handle(move || refresh.update(|n| *n += 1), std::time::Duration::from_secs(every)) {
            on_cleanup(move || t.clear());
        }
    });
    let navigate = leptos_router::hooks::use_navigate();
    let go = move |q: JobQuery| {
        navigate(&q.href(), leptos_router::NavigateOptions { replace: true, scroll: false, ..Default::default() });
    };
    let (go_status, go_on, go_name) = (go.clone(), go.clone(), go);
    let defaults = Resource::new(|| (), |_| get_training_defaults());
    view! {
        <PageHeader title="Training" refresh=refresh
            lede=concat!(
                "Local training runs the seeds' image classifier on this machine with the embedded libtorch worker (the seeds' \"EC2 training\"); ",
                "SageMaker training runs the same estimator on one or several instances in your account.",
            )/>
        <Card title="Jobs">
            <div class="filters">
                <select name="status-filter" on:change=move |ev| go_status(JobQuery { status: event_target_value(&ev), ..query.get_untracked().first_page() })>
                    <option value="" selected=move || query.with(|q| q.status.is_empty())>"Any status"</option>
                    {STATUS_FILTERS.map(|s| view! { <option value=s selected=move || query.with(|q| q.status == s)>{s}</option> }).collect_view()}
                </select>
                <select name="runs-on-filter" on:change=move |ev| go_on(JobQuery { on: RunsOn::parse(&event_target_value(&ev)), ..query.get_untracked().first_page() })>
                    <option value="" selected=move || query.with(|q| q.on.is_none())>"Local and SageMaker"</option>
                    <option value="local" selected=move || query.with(|q| q.on == Some(RunsOn::Local))>"Local only"</option>
                    <option value="sagemaker" selected=move || query.with(|q| q.on == Some(RunsOn::SageMaker))>"SageMaker only"</option>
                </select>
                <input name="name-filter" placeholder="Name contains…" maxlength="100" prop:value=move || query.with(|q| q.name.clone())
                    on:input=move |ev| go_name(JobQuery { name: event_target_value(&ev), ..query.get_untracked().first_page() })/>
            </div>
            <Loaded resource=history loading="Reading the job history…" ok=move |page| view! { <JobTable page query=query.get_untracked()/> }/>
        </Card>
        <Suspense fallback=|| view! { <Loading/> }>
            {move || Suspend::new(async move {
                match defaults.await {
                    Ok(d) => view! { <NewJobForm defaults=d on_queued=Callback::new(move |_| refresh.update(|n| *n += 1))/> }.into_any(),
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Suspense>
        <SageMakerLaunch on_launched=Callback::new(move |_| refresh.update(|n| *n += 1))/>
        <super::upload_panel::UploadPanel defaults/>
        <super::tuning_page::TuningSection/>
    }
}

/// What the SageMaker half of the list says about itself: not configured,
/// or served from a cache whose latest refresh failed.
fn sagemaker_note(page: &JobHistoryPage) -> Option<String> {
    if let Some(note) = &page.list.sagemaker_note {
        return Some(format!("SageMaker jobs are not listed: {note}"));
    }
    let cache = page.list.cache.as_ref()?;
    cache.error.as_ref().map(|e| {
        format!(
            "SageMaker: showing the jobs as last read{}; the latest refresh failed ({e}); next try in {} s.",
            cache.refreshed_at.as_deref().map(|t| format!(" at {}", short_time(t))).unwrap_or_default(),
            cache.next_refresh_seconds
        )
    })
}

#[component]
fn JobTable(page: JobHistoryPage, query: JobQuery) -> impl IntoView {
    let note = sagemaker_note(&page).map(|n| view! { <p class="muted" id="sagemaker-jobs-note">{n}</p> });
    let sync = page.sync.as_ref().map(|s| view! { <p class="muted" id="sagemaker-history" data-complete=s.complete.to_string()>{s.describe()}</p> });
    let filtered = query.is_filtered();
    if page.rows.is_empty() && !query.from_cursor() {
        let text = if filtered {
            "No job matches these filters."
        } else {
            "No training jobs yet. Make the demo set below and queue a local one, or launch one on SageMaker."
        };
        return view! { {note}{sync}<p class="empty">{text}</p> }.into_any();
    }
    let pager = view! {
        <ListPager query id="jobs-count" noun=("job", "jobs") shown=page.rows.len() page=page.list.clone()/>
    };
    let rows = page.rows.into_iter().map(|row| match row {
        HistoryRow::SageMaker(j) => {
            let duration = j.training_seconds.map(|s| crate::components::duration(s as f64)).unwrap_or_else(|| "—".into());
            let metrics = j.final_metrics.iter().map(|(k, v)| format!("{k} {v:.3}")).collect::<Vec<_>>().join(", ");
            // Rows the history backfill read carry what ListTrainingJobs says;
            // the job's page describes the rest.
            let resources = if j.instance_count > 0 { format!("{} × {} · {duration}", j.instance_count, j.instance_type) } else { "—".to_string() };
            let (row_name, href, label) = (j.name.clone(), format!("/training/sagemaker/{}", j.name), j.name.clone());
            view! {
                <tr data-sagemaker-job=row_name data-status=j.status.clone()>
                    <td><A href=href>{label}</A></td>
                    <td><span class="where where-sagemaker">"SageMaker"</span></td>
                    <td><Badge text=j.status.clone() tone=sagemaker_tone(&j.status)/></td>
                    <td>{resources}{j.billable_seconds.map(|b| format!(" · {b} s billed"))}</td>
                    <td>{if metrics.is_empty() { "—".to_string() } else { metrics }}</td>
                    <td>{j.created_at.as_deref().map(short_time).unwrap_or_default()}</td>
                </tr>
            }
            .into_any()
        }
        HistoryRow::Local(j) => {
            let width = format!("width: {:.1}%", 100.0 * if j.status == JobStatus::Completed { 1.0 } else { j.progress.fraction() });
            view! {
                <tr data-job=j.id data-status=j.status.as_str()>
                    <td><A href=format!("/training/local/{}", j.id)>{format!("#{} {}", j.id, j.name)}</A></td>
                    <td><span class="where where-local">"Local"</span></td>
                    <td><Badge text=j.status.as_str() tone=j.status.tone()/></td>
                    <td>
                        <div class="progress small"><div class="progress-bar" style=width></div></div>
                        <span class="muted">{format!("{} · epoch {}/{}", j.architecture.as_str(), j.progress.epoch, j.epochs)}</span>
                    </td>
                    <td>{j.test_accuracy.map(|a| format!("test accuracy {}", percent(a))).unwrap_or_else(|| "—".into())}</td>
                    <td>{short_time(&j.created_at)}</td>
                </tr>
            }
            .into_any()
        }
    });
    view! {
        {note}
        {sync}
        {pager}
        <table class="table" id="jobs">
            <thead>
                <tr><th>"Job"</th><th>"Runs on"</th><th>"Status"</th><th>"Progress / resources"</th><th>"Result"</th><th>"Created"</th></tr>
            </thead>
            <tbody>{rows.collect_view()}</tbody>
        </table>
    }
    .into_any()
}

fn field_error(errors: Signal<Vec<FieldError>>, field: &'static str) -> impl IntoView {
    move || {
        errors
            .get()
            .into_iter()
            .find(|e| e.field == field)
            .map(|e| view! { <span class="field-error" data-field=field>{e.message}</span> })
    }
}

#[component]
fn NewJobForm(defaults: TrainingDefaults, on_queued: Callback<()>) -> impl IntoView {
    let base = StoredValue::new(defaults.spec.clone());
    let form = RwSignal::new(FormFields::from_spec(&defaults.spec));
    let touched = RwSignal::new(false);
    let errors = Signal::derive(move || form.with(|f| f.to_spec(&base.get_value()).err().unwrap_or_default()));
    let shown_errors = Signal::derive(move || if touched.get() { errors.get() } else { vec![] });
    let report = RwSignal::new(None::<Result<DatasetReport, ApiError>>);
    let demo = Action::new(|_: &()| make_demo_dataset());
    let check = Action::new(|path: &String| check_dataset(path.clone()));
    let create = Action::new(move |spec: &super::LocalJobSpec| create_local_job(spec.clone()));
    let navigate = leptos_router::hooks::use_navigate();
    // "Run locally" from a SageMaker job: its lr, batch size and epochs.
    let query = leptos_router::hooks::use_query_map();
    let from_sagemaker = Resource::new(
        move || query.read().get("from_sagemaker"),
        |name| async move {
            match name {
                Some(name) => super::sagemaker::describe_sagemaker_job(crate::names::TrainingJobName::parse(&name).ok()?).await.ok(),
                None => None,
            }
        },
    );
    Effect::new(move |_| {
        if let Some(Some(job)) = from_sagemaker.get() {
            let (lr, batch, epochs) = super::sagemaker::shared_hyperparameters(&job.hyperparameters);
            form.update(|f| {
                f.name = format!("{}-local", job.summary.name);
                if let Some(v) = lr {
                    f.learning_rate = v.to_string();
                }
                if let Some(v) = batch {
                    f.batch_size = v.to_string();
                }
                if let Some(v) = epochs {
                    f.epochs = v.to_string();
                }
            });
        }
    });

    Effect::new(move |_| {
        if let Some(result) = demo.value().get() {
            match result {
                Ok(d) => {
                    form.update(|f| f.dataset = d.path.clone());
                    report.set(Some(Ok(d.report)));
                }
                Err(e) => report.set(Some(Err(e))),
            }
        }
    });
    Effect::new(move |_| {
        if let Some(result) = check.value().get() {
            report.set(Some(result));
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(job)) = create.value().get() {
            on_queued.run(());
            navigate(&format!("/training/local/{}", job.id), Default::default());
        }
    });

    let text = move |label: &'static str, field: &'static str, get: fn(&FormFields) -> String, set: fn(&mut FormFields, String)| {
        view! {
            <label class="field">
                <span>{label}</span>
                <input
                    name=field
                    prop:value=move || form.with(get)
                    on:input=move |ev| form.update(|f| set(f, event_target_value(&ev)))
                />
                {field_error(shown_errors, field)}
            </label>
        }
    };

    view! {
        <Card title="New local training job" id="new-local-job">
            <p class="muted">{format!("Runs on {} · {} CPUs on this machine. Jobs run one at a time, oldest first.", defaults.device, defaults.cpu_threads)}</p>
            {move || from_sagemaker.get().flatten().map(|job| view! {
                <p class="notice" id="prefilled-from-sagemaker">{format!(
                    "Prefilled from SageMaker job {}: learning rate, batch size and epochs. Choose the local dataset.",
                    job.summary.name
                )}</p>
            })}
            <div class="demo-row">
                <button class="btn" id="make-demo" disabled=move || demo.pending().get() || !crate::auth::allowed("training/datasets/demo") title=crate::auth::needs_title("training/datasets/demo") on:click=move |_| { demo.dispatch(()); }>
                    {move || if demo.pending().get() { "Drawing the demo set…" } else { "Make the demo dataset" }}
                </button>
                <span class="muted">
                    {if defaults.demo_exists { "The demo set (five classes of shapes) is at " } else { "Draws 3,000 images of five classes of shapes into " }}
                    <code>{defaults.demo_path.clone()}</code>
                </span>
            </div>
            <form class="form-grid" on:submit=move |ev| {
                ev.prevent_default();
                touched.set(true);
                if let Ok(spec) = form.with(|f| f.to_spec(&base.get_value())) {
                    create.dispatch(spec);
                }
            }>
                {text("Name", "name", |f| f.name.clone(), |f, v| f.name = v)}
                <label class="field wide">
                    <span>"Dataset folder (train/, valid/, test/)"</span>
                    <span class="with-button">
                        <input name="dataset" prop:value=move || form.with(|f| f.dataset.clone()) on:input=move |ev| form.update(|f| f.dataset = event_target_value(&ev))/>
                        <button type="button" class="btn" id="check-dataset" disabled=move || check.pending().get()
                            on:click=move |_| { check.dispatch(form.with(|f| f.dataset.clone())); }>
                            {move || if check.pending().get() { "Checking…" } else { "Check dataset" }}
                        </button>
                    </span>
                    {field_error(shown_errors, "dataset")}
                </label>
                <label class="field">
                    <span>"Architecture"</span>
                    <select name="architecture" on:change=move |ev| form.update(|f| f.architecture = event_target_value(&ev))>
                        {Architecture::ALL.iter().map(|a| {
                            let value = a.as_str();
                            view! { <option value=value selected=move || form.with(|f| f.architecture == value)>{a.label()}</option> }
                        }).collect_view()}
                    </select>
                </label>
                {text("Image size (px)", "image_size", |f| f.image_size.clone(), |f, v| f.image_size = v)}
                {text("Epochs", "epochs", |f| f.epochs.clone(), |f, v| f.epochs = v)}
                {text("Batch size", "batch_size", |f| f.batch_size.clone(), |f, v| f.batch_size = v)}
                {text("Learning rate (Adam)", "learning_rate", |f| f.learning_rate.clone(), |f, v| f.learning_rate = v)}
                {text("Early-stopping patience (epochs, 0 = off)", "patience", |f| f.patience.clone(), |f, v| f.patience = v)}
                {text("CPU threads (0 = libtorch decides)", "threads", |f| f.threads.clone(), |f, v| f.threads = v)}
                {text("Backbone weights file (optional)", "backbone_weights", |f| f.backbone_weights.clone(), |f, v| f.backbone_weights = v)}
                <label class="field checkbox">
                    <input type="checkbox" name="freeze_backbone" prop:checked=move || form.with(|f| f.freeze_backbone)
                        on:change=move |ev| form.update(|f| f.freeze_backbone = event_target_checked(&ev))/>
                    <span>"Freeze the backbone (train the head only)"</span>
                    {field_error(shown_errors, "freeze_backbone")}
                </label>
                <fieldset class="field wide augmentation" id="augmentation">
                    <legend>"Augmentation: how training images vary each epoch"</legend>
                    <label class="checkbox">
                        <input type="checkbox" name="flip" prop:checked=move || form.with(|f| f.flip)
                            on:change=move |ev| form.update(|f| f.flip = event_target_checked(&ev))/>
                        <span>"Mirror half the images left to right (photos of things; not characters, digits or text)"</span>
                    </label>
                    <span class="inline-fields">
                        "Random crops keeping "
                        <input name="crop_min" class="short" inputmode="decimal" prop:value=move || form.with(|f| f.crop_min.clone())
                            on:input=move |ev| form.update(|f| f.crop_min = event_target_value(&ev))/>
                        " to "
                        <input name="crop_max" class="short" inputmode="decimal" prop:value=move || form.with(|f| f.crop_max.clone())
                            on:input=move |ev| form.update(|f| f.crop_max = event_target_value(&ev))/>
                        " % of the area (both blank: the whole image)"
                    </span>
                    <span class="form-row-actions">
                        <button type="button" class="btn btn-small" id="augment-photos"
                            on:click=move |_| form.update(|f| { f.flip = true; f.crop_min = "35".into(); f.crop_max = "100".into(); })>"Photos (default)"</button>
                        <button type="button" class="btn btn-small" id="augment-characters"
                            on:click=move |_| form.update(|f| { f.flip = false; f.crop_min = "80".into(); f.crop_max = "100".into(); })>"Characters and digits"</button>
                        <button type="button" class="btn btn-small" id="augment-none"
                            on:click=move |_| form.update(|f| { f.flip = false; f.crop_min.clear(); f.crop_max.clear(); })>"None"</button>
                    </span>
                    {field_error(shown_errors, "augmentation")}
                </fieldset>
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary" id="queue-job" title=crate::auth::needs_title("training/local/create")
                        disabled=move || !crate::auth::allowed("training/local/create") || create.pending().get() || (touched.get() && !errors.get().is_empty())>
                        {move || if create.pending().get() { "Checking the dataset and queuing…" } else { "Queue job" }}
                    </button>
                </div>
            </form>
            {move || create.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
            {move || report.get().map(|r| match r {
                Ok(report) => view! { <DatasetReportView report/> }.into_any(),
                Err(error) => view! { <ErrorPanel error/> }.into_any(),
            })}
        </Card>
    }
}

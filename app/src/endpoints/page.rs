//! The Endpoints page (local and SageMaker endpoints in one list, and the two
//! deploy forms) and an endpoint's page (status, instances, metric charts,
//! the Test panel, the image test bench, delete).

use super::list::{EndpointPage, EndpointQuery, STATUS_FILTERS};
use super::test_panel::TestPanel;
use super::evaluation::TestBench;
use super::{
    delete_endpoint, deploy_local_endpoint, deploy_sagemaker_endpoint, deployable_training_jobs, describe_endpoint,
    get_endpoint_metrics, list_endpoints, refresh_endpoints, Backend, EndpointDetail, EndpointMetrics, LocalDeploySpec, MetricWindow,
    SageMakerDeploySpec,
};
use crate::names::EndpointName;
use crate::components::chart::{LineChart, Series};
use crate::list_view::ListPager;
use crate::components::{dispatch_or_show, number_input, or_dash, parse_u32, short_time, Badge, Card, ConfirmButton, DataTable, ErrorPanel, Loaded, Loading, PageHeader, TextField};
use crate::training::{list_local_jobs, CompletedJobSelect, JobStatus};
use crate::ApiError;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};

/// ok for InService, busy while changing, bad for Failed.
pub fn status_tone(status: &str) -> &'static str {
    match status {
        "InService" => "ok",
        "Failed" | "OutOfService" => "bad",
        "Creating" | "Updating" | "SystemUpdating" | "RollingBack" | "Deleting" => "busy",
        _ => "idle",
    }
}

#[component]
pub fn EndpointsPage() -> impl IntoView {
    let refresh = RwSignal::new(0u32);
    // The filters and the page live in the URL, so a view can be shared.
    let url = leptos_router::hooks::use_query_map();
    let query = Memo::new(move |_| url.with(|m| EndpointQuery::from_pairs(|k| m.get(k))));
    let list = Resource::new(move || (refresh.get(), query.get()), |(_, q)| list_endpoints(q));
    // The Refresh button lists the account again; a page view reads SQLite.
    let relist = Action::new(|q: &EndpointQuery| refresh_endpoints(q.clone()));
    Effect::new(move |_| {
        if relist.value().get().is_some() {
            refresh.update(|n| *n += 1);
        }
    });
    // SageMaker rows change in the poller's cache: look again every 10 s.
    crate::components::poll::follow(list, refresh, std::time::Duration::from_secs(10), |_| true);
    let on_deployed = Callback::new(move |_| refresh.update(|n| *n += 1));
    let navigate = leptos_router::hooks::use_navigate();
    let go = move |q: EndpointQuery| {
        navigate(&q.href(), leptos_router::NavigateOptions { replace: true, scroll: false, ..Default::default() });
    };
    let (go_status, go_on, go_name) = (go.clone(), go.clone(), go);
    view! {
        <PageHeader title="Endpoints">
            <button class="btn" id="refresh-endpoints" disabled=move || relist.pending().get() on:click=move |_| { relist.dispatch(query.get_untracked()); }>
                {move || if relist.pending().get() { "Reading…" } else { "Refresh" }}
            </button>
        </PageHeader>
        <p class="lede">
            "An endpoint serves a trained classifier: locally, in this process through libtorch, or on SageMaker. "
            "Both answer "<code>"POST /endpoints/NAME/invocations"</code>" with an image, as SageMaker's InvokeEndpoint does."
        </p>
        {move || relist.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
        <Card title="Endpoints">
            <div class="filters">
                <select name="status-filter" on:change=move |ev| go_status(EndpointQuery { status: event_target_value(&ev), ..query.get_untracked().first_page() })>
                    <option value="" selected=move || query.with(|q| q.status.is_empty())>"Any status"</option>
                    {STATUS_FILTERS.map(|s| view! { <option value=s selected=move || query.with(|q| q.status == s)>{s}</option> }).collect_view()}
                </select>
                <select name="runs-on-filter" on:change=move |ev| go_on(EndpointQuery { on: Backend::from_slug(&event_target_value(&ev)).ok(), ..query.get_untracked().first_page() })>
                    <option value="" selected=move || query.with(|q| q.on.is_none())>"Local and SageMaker"</option>
                    <option value="local" selected=move || query.with(|q| q.on == Some(Backend::Local))>"Local only"</option>
                    <option value="sagemaker" selected=move || query.with(|q| q.on == Some(Backend::SageMaker))>"SageMaker only"</option>
                </select>
                <input name="name-filter" placeholder="Name contains…" maxlength="63" prop:value=move || query.with(|q| q.name.clone())
                    on:input=move |ev| go_name(EndpointQuery { name: event_target_value(&ev), ..query.get_untracked().first_page() })/>
            </div>
            <Loaded resource=list loading="Listing endpoints…" ok=move |page| view! { <EndpointTable page query=query.get_untracked()/> }/>
        </Card>
        <div class="two-columns">
            <LocalDeployForm on_deployed/>
            <SageMakerDeployForm on_deployed/>
        </div>
    }
}

/// What the SageMaker half of the list says about itself: not configured,
/// or as last read when the latest look failed.
fn sagemaker_note(page: &EndpointPage) -> Option<String> {
    let cache = page.list.cache.as_ref();
    let note = page.list.sagemaker_note.as_ref()?;
    Some(match cache {
        None => format!("SageMaker endpoints are not listed: {note}"),
        Some(c) => format!(
            "SageMaker: {note}{}; next look in {} s.",
            c.refreshed_at.as_deref().map(|t| format!(", last read at {}", short_time(t))).unwrap_or_default(),
            c.next_refresh_seconds
        ),
    })
}

#[component]
fn EndpointTable(page: EndpointPage, query: EndpointQuery) -> impl IntoView {
    let note = sagemaker_note(&page).map(|n| view! { <p class="muted" id="sagemaker-note">{n}</p> });
    let read_at = page.list.cache.as_ref().and_then(|c| c.refreshed_at.clone()).map(|t| {
        view! { <p class="muted" id="endpoints-read-at">{format!("SageMaker endpoints as read at {}.", short_time(&t))}</p> }
    });
    if page.endpoints.is_empty() && !query.from_cursor() {
        let text = if query.is_filtered() {
            "No endpoint matches these filters."
        } else {
            "No endpoints yet. Deploy a completed local training job below."
        };
        return view! { {note}<p class="empty">{text}</p> }.into_any();
    }
    view! {
        {note}
        <ListPager query id="endpoints-count" noun=("endpoint", "endpoints") shown=page.endpoints.len() page=page.list.clone()/>
        <DataTable id="endpoints" headers=&["Name", "Runs on", "Status", "Instances", "Model", "Created"]>
            {page.endpoints.into_iter().map(|e| {
                let href = e.backend.page_path(&e.name);
                let (row_name, link_name) = (e.name.clone(), e.name.clone());
                // A SageMaker row the poller has listed but not described yet.
                let instances = if e.instance_type.is_empty() { "—".to_string() } else { format!("{} × {}", e.instances, e.instance_type) };
                view! {
                    <tr data-endpoint=row_name data-backend=e.backend.slug() data-status=e.status.clone()>
                        <td><A href=href>{link_name}</A></td>
                        <td><span class=format!("where where-{}", e.backend.slug())>{e.backend.label()}</span></td>
                        <td><Badge text=e.status.clone() tone=status_tone(&e.status)/></td>
                        <td>{instances}</td>
                        <td>{or_dash(Some(e.model.clone()))}</td>
                        <td>{e.created_at.as_deref().map(short_time).unwrap_or_else(|| "—".into())}</td>
                    </tr>
                }
            }).collect_view()}
        </DataTable>
        {read_at}
    }
    .into_any()
}

#[component]
fn LocalDeployForm(on_deployed: Callback<()>) -> impl IntoView {
    let jobs = Resource::new(|| (), |_| list_local_jobs());
    let name = RwSignal::new(String::new());
    let job = RwSignal::new(String::new());
    // "Serve on a local endpoint" from a SageMaker job's page.
    let query = leptos_router::hooks::use_query_map();
    let sagemaker_job = RwSignal::new(query.with_untracked(|q| q.get("from_sagemaker")).unwrap_or_default());
    if !sagemaker_job.get_untracked().is_empty() {
        name.set(format!("{}-local", sagemaker_job.get_untracked().chars().take(50).collect::<String>()));
    }
    let from_sagemaker = move || !sagemaker_job.get().is_empty();
    let d = LocalDeploySpec::DEFAULT_BATCHING;
    let instances = RwSignal::new("1".to_string());
    let max_batch = RwSignal::new(d.max_batch.to_string());
    let max_wait = RwSignal::new(d.max_wait_ms.to_string());
    let queue = RwSignal::new(d.queue_capacity.to_string());
    let problem = RwSignal::new(None::<ApiError>);
    let deploy = Action::new(|spec: &LocalDeploySpec| deploy_local_endpoint(spec.clone()));
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(detail)) = deploy.value().get() {
            on_deployed.run(());
            navigate(&Backend::Local.page_path(&detail.summary.name), Default::default());
        }
    });
    let spec = move || -> Result<LocalDeploySpec, ApiError> {
        let remote = sagemaker_job.get().trim().to_string();
        let spec = LocalDeploySpec {
            name: name.get().trim().to_string(),
            job_id: if remote.is_empty() { job.get().parse().map_err(|_| ApiError::Invalid("choose a completed local job".into()))? } else { 0 },
            sagemaker_job: (!remote.is_empty()).then_some(remote),
            instances: parse_u32("instances", &instances.get())?,
            batching: super::Batching {
                max_batch: parse_u32("max batch size", &max_batch.get())?,
                max_wait_ms: parse_u32("max wait", &max_wait.get())?,
                queue_capacity: parse_u32("queue capacity", &queue.get())?,
            },
        };
        spec.validate()?;
        Ok(spec)
    };
    view! {
        <Card title="Deploy a local endpoint" id="deploy-local" note="Serves a completed job's model in this process: N replicas behind one bounded queue with dynamic batching. A SageMaker job's model.tar.gz is downloaded and unpacked first.">
            <form class="form-grid" on:submit=move |ev| {
                ev.prevent_default();
                dispatch_or_show(deploy, problem, spec());
            }>
                <label class="field wide">
                    <span>"SageMaker training job (empty: a local job)"</span>
                    <input name="local_from_sagemaker" placeholder="a completed SageMaker job's name" prop:value=move || sagemaker_job.get()
                        on:input=move |ev| sagemaker_job.set(event_target_value(&ev))/>
                </label>
                <label class="field wide" class:hidden=from_sagemaker>
                    <span>"Completed local job"</span>
                    <CompletedJobSelect jobs job name="job" on_pick=Callback::new(move |id: i64| {
                        // The first pick names the endpoint only when no name was typed.
                        if name.get_untracked().is_empty() || name.get_untracked().starts_with("local-job-") {
                            name.set(format!("local-job-{id}"));
                        }
                    })/>
                </label>
                <TextField label="Endpoint name" name="name" value=name/>
                {number_input("Instances (replicas)", "instances", instances)}
                {number_input("Max batch size", "max_batch", max_batch)}
                {number_input("Max wait for a batch (ms)", "max_wait_ms", max_wait)}
                {number_input("Queue capacity (then 429)", "queue_capacity", queue)}
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary" id="deploy-local-button" title=crate::auth::needs_title("endpoints/local/deploy") disabled=move || deploy.pending().get() || !crate::auth::allowed("endpoints/local/deploy")>
                        {move || match (deploy.pending().get(), from_sagemaker()) {
                        (true, true) => "Downloading and loading the model…",
                        (true, false) => "Loading the model…",
                        _ => "Deploy",
                    }}
                    </button>
                </div>
            </form>
            {move || problem.get().map(|error| view! { <ErrorPanel error/> })}
            {move || deploy.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
        </Card>
    }
}

/// Deploying a local job to SageMaker: which job, and where its packed
/// model.tar.gz goes.
#[component]
fn LocalModelSource(
    local_jobs: Resource<Result<Vec<crate::training::LocalJobSummary>, ApiError>>,
    local_job: RwSignal<String>,
    model_s3: RwSignal<String>,
) -> impl IntoView {
    view! {
        <label class="field wide">
            <span>"…or a completed local job (Sagedeck packs its artifact as model.tar.gz with code/inference.py and uploads it)"</span>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let done: Vec<_> = local_jobs.await.unwrap_or_default().into_iter().filter(|j| j.status == JobStatus::Completed).collect();
                    view! {
                        <select name="sm_local_job" on:change=move |ev| local_job.set(event_target_value(&ev))>
                            <option value="">"— the SageMaker training job above —"</option>
                            {done.into_iter().map(|j| view! { <option value=j.id.to_string()>{format!("local job #{} {}", j.id, j.name)}</option> }).collect_view()}
                        </select>
                    }
                })}
            </Suspense>
        </label>
        <label class="field wide" class:hidden=move || local_job.get().is_empty()>
            <span>"Put its model.tar.gz under (s3://bucket/prefix)"</span>
            <input name="model_s3" placeholder="s3://my-bucket/models" prop:value=move || model_s3.get() on:input=move |ev| model_s3.set(event_target_value(&ev))/>
        </label>
    }
}

/// Common SageMaker real-time inference instance types.
const INSTANCE_TYPES: &[&str] = &["ml.t2.medium", "ml.m5.large", "ml.m5.xlarge", "ml.c5.large", "ml.c5.xlarge", "ml.g4dn.xlarge", "ml.g5.xlarge"];

#[component]
fn SageMakerDeployForm(on_deployed: Callback<()>) -> impl IntoView {
    let jobs = Resource::new(|| (), |_| deployable_training_jobs());
    let local_jobs = Resource::new(|| (), |_| list_local_jobs());
    let name = RwSignal::new(String::new());
    let query = leptos_router::hooks::use_query_map();
    let job = RwSignal::new(query.with_untracked(|q| q.get("from_sagemaker")).unwrap_or_default());
    // A local job's artifact instead: packed as model.tar.gz, uploaded to model_s3.
    let local_job = RwSignal::new(String::new());
    let model_s3 = RwSignal::new(String::new());
    let instance_type = RwSignal::new("ml.m5.large".to_string());
    let count = RwSignal::new("1".to_string());
    let image = RwSignal::new(String::new());
    let role = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<ApiError>);
    let deploy = Action::new(|spec: &SageMakerDeploySpec| deploy_sagemaker_endpoint(spec.clone()));
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(detail)) = deploy.value().get() {
            on_deployed.run(());
            navigate(&Backend::SageMaker.page_path(&detail.summary.name), Default::default());
        }
    });
    view! {
        <Card title="Deploy on SageMaker" id="deploy-sagemaker" note="CreateModel → CreateEndpointConfig → CreateEndpoint from a completed SageMaker job's model.tar.gz, or from a local job's artifact packed as one. Served by the PyTorch inference image with Sagedeck's inference.py; billed per instance-hour while InService.">
            <Suspense fallback=|| view! { <Loading text="Looking for completed SageMaker training jobs…"/> }>
                {move || Suspend::new(async move {
                    match jobs.await {
                        Err(error) => view! { <ErrorPanel error/> }.into_any(),
                        Ok(list) => {
                            let none = list.is_empty();
                            if let (Some(first), true) = (list.first(), job.get_untracked().is_empty()) {
                                job.set(first.name.clone());
                            }
                            if name.get_untracked().is_empty() {
                                name.set(format!("{}-endpoint", job.get_untracked().chars().take(50).collect::<String>()));
                            }
                            let artifacts: Vec<(String, String)> = list.iter().map(|j| (j.name.clone(), j.model_artifact.clone())).collect();
                            view! {
                                <form class="form-grid" on:submit=move |ev| {
                                    ev.prevent_default();
                                    let local = local_job.get().parse::<i64>().ok();
                                    let spec = SageMakerDeploySpec {
                                        name: name.get().trim().to_string(),
                                        training_job: if local.is_some() { String::new() } else { job.get() },
                                        local_job: local,
                                        model_s3: model_s3.get().trim().to_string(),
                                        image: image.get(),
                                        role_arn: role.get().trim().to_string(),
                                        instance_type: instance_type.get(),
                                        instance_count: count.get().trim().parse().unwrap_or(0),
                                    };
                                    dispatch_or_show(deploy, problem, spec.validate().map(|()| spec));
                                }>
                                    <label class="field wide">
                                        <span>"Training job"</span>
                                        <select name="training_job" on:change=move |ev| job.set(event_target_value(&ev))>
                                            {list.into_iter().map(|j| {
                                                let selected = job.get_untracked() == j.name;
                                                view! { <option value=j.name.clone() selected=selected>{format!("{} · {}", j.name, j.finished_at.as_deref().map(short_time).unwrap_or_default())}</option> }
                                            }).collect_view()}
                                        </select>
                                        <span class="muted">{move || artifacts.iter().find(|(n, _)| *n == job.get()).map(|(_, a)| format!("Model artifact: {a}"))}</span>
                                        {none.then(|| view! { <span class="muted">"No completed SageMaker training job with a model artifact in this account and region."</span> })}
                                    </label>
                                    <LocalModelSource local_jobs local_job model_s3/>
                                    <TextField label="Endpoint name" name="sm_name" value=name/>
                                    <label class="field">
                                        <span>"Instance type"</span>
                                        <select name="instance_type" on:change=move |ev| instance_type.set(event_target_value(&ev))>
                                            {INSTANCE_TYPES.iter().map(|t| view! { <option value=*t selected=*t == "ml.m5.large">{*t}</option> }).collect_view()}
                                        </select>
                                    </label>
                                    {number_input("Instance count", "instance_count", count)}
                                    <TextField label="Inference image (empty: the region's PyTorch inference image)" name="image" wide=true value=image/>
                                    <TextField label="Execution role ARN (empty: the training job's role)" name="role" wide=true value=role/>
                                    <div class="form-actions">
                                        <button type="submit" class="btn btn-primary" id="deploy-sagemaker-button" title=crate::auth::needs_title("endpoints/sagemaker/deploy") disabled=move || deploy.pending().get() || !crate::auth::allowed("endpoints/sagemaker/deploy")>
                                            {move || if deploy.pending().get() { "Creating model, config and endpoint…" } else { "Deploy on SageMaker" }}
                                        </button>
                                    </div>
                                </form>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
            {move || problem.get().map(|error| view! { <ErrorPanel error/> })}
            {move || deploy.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
        </Card>
    }
}

#[component]
pub fn EndpointPage() -> impl IntoView {
    let params = use_params_map();
    let backend = move || Backend::from_slug(&params.read().get("backend").unwrap_or_default()).unwrap_or(Backend::Local);
    let name = move || params.read().get("name").unwrap_or_default();
    // The route's name, checked once: a bad one is the page's error, and the
    // panels that need a valid name are not shown.
    let endpoint = move || EndpointName::parse(&name());
    let tick = RwSignal::new(0u32);
    provide_context(super::guardrails_panel::AlarmsChanged(RwSignal::new(0)));
    let window = RwSignal::new(MetricWindow::Hour);
    let detail = Resource::new(move || (backend(), endpoint(), tick.get()), |(b, n, _)| async move { describe_endpoint(b, n?).await });
    let metrics = Resource::new(move || (backend(), endpoint(), window.get(), tick.get()), |(b, n, w, _)| async move { get_endpoint_metrics(b, n?, w).await });
    // Status and metrics move while the page is open: look again every 5 s.
    Effect::new(move |_| {
        tick.get();
        if let Ok(t) = set_timeout_with_handle(move || tick.update(|n| *n += 1), std::time::Duration::from_secs(5)) {
            on_cleanup(move || t.clear());
        }
    });
    // Actions run outside any reactive scope: read the route untracked there.
    let delete = Action::new(move |with_config: &bool| {
        let p = params.read_untracked();
        let backend = Backend::from_slug(&p.get("backend").unwrap_or_default()).unwrap_or(Backend::Local);
        let (name, with_config) = (EndpointName::parse(&p.get("name").unwrap_or_default()), *with_config);
        async move { delete_endpoint(backend, name?, with_config).await }
    });
    let question = if Backend::from_slug(&params.read_untracked().get("backend").unwrap_or_default()) == Ok(Backend::SageMaker) {
        "Delete the endpoint, its configuration and its model on SageMaker?"
    } else {
        "Stop and delete this local endpoint? Its artifact stays."
    };
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            navigate("/endpoints", Default::default());
        }
    });
    view! {
        <PageHeader title=format!("Endpoint {}", params.read_untracked().get("name").unwrap_or_default())>
            <A href="/endpoints" attr:class="btn">"← All endpoints"</A>
            <A href=move || format!("/scaling/{}/{}", backend().slug(), name()) attr:class="btn" attr:id="scaling-link">"Auto-scaling"</A>
            <ConfirmButton
                label="Delete"
                question=question
                on_confirm=Callback::new(move |_| { delete.dispatch(true); })
                needs="endpoints/delete"
                pending=delete.pending()
                danger=true
            />
        </PageHeader>
        {move || delete.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
        <Loaded resource=detail ok=move |d| view! { <EndpointFacts d/> }/>
        <div class="two-columns">
            <Card title="Test">
                {move || view! { <TestPanel backend=backend() name=name()/> }}
            </Card>
            <section class="card" id="metrics">
                <h2>"Metrics "<WindowPicker window/></h2>
                <Loaded resource=metrics ok=move |m| view! { <MetricCharts m/> }/>
            </section>
        </div>
        {move || endpoint().ok().filter(|_| backend() == Backend::Local).map(|name| view! { <super::versions::VersionsPanel name/> })}
        {move || endpoint().ok().filter(|_| backend() == Backend::SageMaker).map(|name| view! { <super::guardrails_panel::SageMakerRolloutPanel name/> })}
        {move || endpoint().ok().map(|name| view! { <super::guardrails_panel::AlarmsPanel backend=backend() name/> })}
        {move || endpoint().ok().map(|name| view! { <TestBench backend=backend() name/> })}
        {move || view! { <crate::schedules::SchedulePanel scheduled=crate::schedules::Scheduled::Endpoint(backend(), name())/> }}
    }
}

#[component]
fn EndpointFacts(d: EndpointDetail) -> impl IntoView {
    let s = d.summary.clone();
    let batching = d.batching.map(|b| format!("batch ≤ {}, wait ≤ {} ms, queue {}", b.max_batch, b.max_wait_ms, b.queue_capacity));
    view! {
        <section class="card" id="endpoint" data-status=s.status.clone() data-backend=s.backend.slug()>
            <dl class="facts">
                <dt>"Status"</dt><dd><Badge text=s.status.clone() tone=status_tone(&s.status)/></dd>
                <dt>"Runs on"</dt><dd>{s.backend.label()}</dd>
                <dt>"Instances"</dt><dd id="instances">{format!("{} × {}", s.instances, s.instance_type)}</dd>
                <dt>"Model"</dt><dd>{s.model.clone()}</dd>
                <dt>"Invoke"</dt><dd><code>{format!("POST {}", d.invoke_path)}</code></dd>
                {batching.map(|b| view! { <dt>"Batching"</dt><dd>{b}</dd> })}
                {d.queued.map(|q| view! { <dt>"Queued now"</dt><dd>{q}</dd> })}
                {d.input_size.map(|px| view! { <dt>"Input"</dt><dd>{format!("{px} × {px} px, {} classes", d.classes.len())}</dd> })}
                {d.artifact_dir.clone().map(|a| view! { <dt>"Artifact"</dt><dd><code>{a}</code>" "{d.job_id.map(|id| view! { <A href=format!("/training/local/{id}")>{format!("job #{id}")}</A> })}</dd> })}
                {d.config_name.clone().map(|c| view! { <dt>"Endpoint config"</dt><dd>{c}</dd> })}
                {d.arn.clone().map(|a| view! { <dt>"ARN"</dt><dd><code>{a}</code></dd> })}
                {d.failure_reason.clone().map(|f| view! { <dt>"Failure"</dt><dd class="bad">{f}</dd> })}
            </dl>
            {(!d.variants.is_empty()).then(|| view! {
                <DataTable id="variants" compact=true headers=&["Variant", "Model", "Instance type", "Current", "Desired", "Weight"]>
                    {d.variants.iter().map(|v| view! {
                        <tr>
                            <td>{v.name.clone()}</td><td>{v.model.clone()}</td><td>{v.instance_type.clone()}</td>
                            <td>{v.current_instances.map(|n| n.to_string()).unwrap_or_else(|| "—".into())}</td>
                            <td>{v.desired_instances.map(|n| n.to_string()).unwrap_or_else(|| "—".into())}</td>
                            <td>{v.weight.map(|w| format!("{w}")).unwrap_or_else(|| "—".into())}</td>
                        </tr>
                    }).collect_view()}
                </DataTable>
            })}
        </section>
    }
}

/// Last hour or last day, for a metrics card's heading.
#[component]
pub fn WindowPicker(window: RwSignal<MetricWindow>) -> impl IntoView {
    let button = move |w: MetricWindow, label: &'static str| view! {
        <button class=move || if window.get() == w { "btn small active" } else { "btn small" } on:click=move |_| window.set(w)>{label}</button>
    };
    view! { <span class="segmented">{button(MetricWindow::Hour, "Last hour")}{button(MetricWindow::Day, "Last day")}</span> }
}

/// One metric of a window as a chart series (x: unix seconds), scaled.
pub fn metric_series(m: &EndpointMetrics, name: &str, class: &'static str, scale: f64) -> Series {
    let points = m
        .series
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.points.iter().map(|&(t, v)| (t as f64, v * scale)).collect())
        .unwrap_or_default();
    Series { name: name.to_string(), class, points }
}

/// The sum of a count metric over the window (`+ 0.0` turns the -0.0 of
/// an empty sum into 0).
pub fn metric_total(m: &EndpointMetrics, name: &str) -> f64 {
    m.series.iter().filter(|s| s.name == name).flat_map(|s| s.points.iter().map(|p| p.1)).sum::<f64>() + 0.0
}

#[component]
fn MetricCharts(m: EndpointMetrics) -> impl IntoView {
    let total = metric_total(&m, "Invocations");
    let errors = metric_total(&m, "Invocation4XXErrors") + metric_total(&m, "Invocation5XXErrors");
    let invocations = vec![metric_series(&m, "Invocations", "series-a", 1.0), metric_series(&m, "Invocation4XXErrors", "series-c", 1.0), metric_series(&m, "Invocation5XXErrors", "series-d", 1.0)];
    let latency = vec![metric_series(&m, "ModelLatency", "series-a", 0.001), metric_series(&m, "OverheadLatency", "series-b", 0.001)];
    let per_instance = vec![metric_series(&m, "InvocationsPerInstance", "series-b", 1.0)];
    view! {
        <p class="muted" id="metrics-summary" data-invocations=total>
            {format!("{total} invocations, {errors} errors in the window · {}", m.source)}
        </p>
        <LineChart title="Invocations per period" series=invocations x_label="UTC" time_axis=true/>
        <LineChart title="Latency (ms, average)" series=latency x_label="UTC" time_axis=true/>
        <LineChart title="Invocations per instance" series=per_instance x_label="UTC" time_axis=true/>
    }
}

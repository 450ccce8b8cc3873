//! The Lambda pages: every function (local and on AWS) with the two ways to
//! make one for an endpoint, and a function's page: its configuration,
//! reserved and provisioned concurrency with validation, the capacity check
//! against its endpoint, and a test invocation with the log tail.

use super::{
    check_provisioned, check_reserved, create_local_function, describe_function, get_function_metrics, list_functions, set_provisioned_concurrency,
    set_reserved_concurrency, set_up_endpoint_function, test_invoke_function, FnHome, FunctionDetail, FunctionList,
    LambdaSetupSpec, LocalFunctionSpec,
};
use crate::components::{dispatch_or_show, or_dash, short_time, Badge, Card, DataTable, ErrorPanel, Loaded, PageHeader, TextField};
use crate::components::chart::LineChart;
use crate::endpoints::{list_endpoints, metric_series, metric_total, Backend, EndpointMetrics, MetricWindow, WindowPicker};
use crate::names::FunctionName;
use crate::ApiError;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};

fn opt_number(text: &str) -> Result<Option<u32>, ApiError> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse().map(Some).map_err(|_| ApiError::Invalid(format!("{t:?} is not a whole number")))
}

#[component]
pub fn LambdaPage() -> impl IntoView {
    let version = RwSignal::new(0u32);
    let list = Resource::new(move || version.get(), |_| list_functions());
    view! {
        <PageHeader title="Lambda" refresh=version
            lede=concat!(
                "The function in front of an endpoint, as the seeds build it: it forwards the event to InvokeEndpoint and returns the body. ",
                "Reserved concurrency caps it (beyond it, callers get 429 TooManyRequestsException); provisioned concurrency keeps environments initialised.",
            )/>
        <Card title="Functions">
            <Loaded resource=list loading="Listing functions…" ok=move |list| view! { <FunctionTable list/> }/>
        </Card>
        <div class="two-columns">
            <LocalFunctionForm/>
            <SetupForm/>
        </div>
    }
}

#[component]
fn FunctionTable(list: FunctionList) -> impl IntoView {
    let note = list.aws_note.clone();
    view! {
        {if list.functions.is_empty() {
            view! { <p class="empty">"No functions yet: make one for an endpoint below."</p> }.into_any()
        } else {
            view! {
                <DataTable id="functions" headers=&["Function", "Runs on", "Endpoint", "Reserved", "Runtime", "Modified"]>
                    {list.functions.into_iter().map(|f| {
                        let (row, link) = (f.name.clone(), f.name.clone());
                        view! {
                            <tr data-function=row data-home=f.home.slug()>
                                <td><A href=f.home.page_path(&f.name)>{link}</A></td>
                                <td>{f.home.label()}</td>
                                <td>{or_dash(f.endpoint)}</td>
                                <td>{f.reserved.map(|r| r.to_string()).unwrap_or_else(|| "unreserved".into())}</td>
                                <td>{f.runtime}</td>
                                <td>{f.last_modified.as_deref().map(short_time).unwrap_or_else(|| "—".into())}</td>
                            </tr>
                        }
                    }).collect_view()}
                </DataTable>
            }.into_any()
        }}
        {note.map(|n| view! { <p class="muted" id="aws-note">"AWS functions are not listed: "{n}</p> })}
    }
}

/// The endpoints of one backend, as options.
fn endpoint_select(backend: Backend, chosen: RwSignal<String>) -> impl IntoView {
    // The newest of that backend; the name filter of the list is the way to the rest.
    let list = Resource::new(|| (), move |_| list_endpoints(crate::endpoints::list::EndpointQuery { on: Some(backend), ..Default::default() }));
    view! {
        <Suspense fallback=|| view! { <select disabled=true><option>"Loading…"</option></select> }>
            {move || Suspend::new(async move {
                let names: Vec<String> = list.await.map(|l| l.endpoints.into_iter().filter(|e| e.backend == backend).map(|e| e.name).collect()).unwrap_or_default();
                if chosen.get_untracked().is_empty() {
                    if let Some(first) = names.first() {
                        chosen.set(first.clone());
                    }
                }
                let empty = names.is_empty();
                view! {
                    <select name="endpoint" on:change=move |ev| chosen.set(event_target_value(&ev))>
                        {names.into_iter().map(|n| { let selected = chosen.get_untracked() == n; view! { <option value=n.clone() selected=selected>{n.clone()}</option> } }).collect_view()}
                    </select>
                    {empty.then(|| view! { <span class="muted">"No "{backend.label()}" endpoint yet: deploy one on the "<A href="/endpoints">"Endpoints"</A>" page."</span> })}
                }
            })}
        </Suspense>
    }
}

#[component]
fn LocalFunctionForm() -> impl IntoView {
    let name = RwSignal::new("invoke-endpoint".to_string());
    let endpoint = RwSignal::new(String::new());
    let reserved = RwSignal::new("5".to_string());
    let provisioned = RwSignal::new("1".to_string());
    let problem = RwSignal::new(None::<ApiError>);
    let create = Action::new(|spec: &LocalFunctionSpec| create_local_function(spec.clone()));
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(detail)) = create.value().get() {
            navigate(&FnHome::Local.page_path(&detail.summary.name), Default::default());
        }
    });
    view! {
        <Card title="Local function for a local endpoint" id="create-local">
            <p class="muted">"Answers "<code>"POST /functions/NAME/invocations"</code>" (and Lambda's own "<code>"/2015-03-31/functions/NAME/invocations"</code>") with the seeds' handler."</p>
            <form class="form-grid" on:submit=move |ev| {
                ev.prevent_default();
                let spec = (|| -> Result<LocalFunctionSpec, ApiError> {
                    Ok(LocalFunctionSpec { name: name.get().trim().into(), endpoint: endpoint.get(), reserved: opt_number(&reserved.get())?, provisioned: opt_number(&provisioned.get())? })
                })();
                dispatch_or_show(create, problem, spec);
            }>
                <TextField label="Function name" name="name" value=name/>
                <label class="field"><span>"Endpoint"</span>{endpoint_select(Backend::Local, endpoint)}</label>
                <TextField label="Reserved concurrency (empty = unreserved)" name="reserved" value=reserved/>
                <TextField label="Provisioned concurrency (empty = none)" name="provisioned" value=provisioned/>
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary" id="create-local-button" disabled=move || create.pending().get()>"Create"</button>
                </div>
            </form>
            {move || problem.get().map(|error| view! { <ErrorPanel error/> })}
            {move || create.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
        </Card>
    }
}

#[component]
fn SetupForm() -> impl IntoView {
    let endpoint = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let memory = RwSignal::new("256".to_string());
    let timeout = RwSignal::new("30".to_string());
    let setup = Action::new(|spec: &LambdaSetupSpec| set_up_endpoint_function(spec.clone()));
    view! {
        <Card title="Set up the endpoint's Lambda on AWS" id="setup-aws" note="Creates the execution role with an inline policy allowing only sagemaker:InvokeEndpoint on this endpoint and its own logs, then the function (the seeds' handler, ENDPOINT_NAME in its environment), then test-invokes it. A failed step undoes the ones before it.">
            <form class="form-grid" on:submit=move |ev| {
                ev.prevent_default();
                let n = if name.get().trim().is_empty() { format!("{}-invoke", endpoint.get()) } else { name.get().trim().to_string() };
                setup.dispatch(LambdaSetupSpec {
                    endpoint: endpoint.get(),
                    function_name: n,
                    memory_mb: memory.get().trim().parse().unwrap_or(0),
                    timeout_s: timeout.get().trim().parse().unwrap_or(0),
                });
            }>
                <label class="field"><span>"SageMaker endpoint"</span>{endpoint_select(Backend::SageMaker, endpoint)}</label>
                <TextField label="Function name (empty = ENDPOINT-invoke)" name="function_name" value=name/>
                <TextField label="Memory (MB)" name="memory_mb" value=memory/>
                <TextField label="Timeout (s)" name="timeout_s" value=timeout/>
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary" id="setup-button" title=crate::auth::needs_title("lambda/setup") disabled=move || setup.pending().get() || !crate::auth::allowed("lambda/setup")>
                        {move || if setup.pending().get() { "Setting up…" } else { "Set up" }}
                    </button>
                </div>
            </form>
            {move || setup.value().get().map(|r| match r {
                Err(error) => view! { <ErrorPanel error/> }.into_any(),
                Ok(report) => view! {
                    <div id="setup-report">
                        <ol>{report.steps.iter().map(|s| view! { <li>{s.clone()}</li> }).collect_view()}</ol>
                        <p>"Role "<code>{report.role_arn.clone()}</code>" got this policy:"</p>
                        <pre class="code">{report.policy.clone()}</pre>
                        <p><A href=FnHome::Aws.page_path(&report.function_name)>"Open the function"</A></p>
                    </div>
                }.into_any(),
            })}
        </Card>
    }
}

#[component]
pub fn FunctionPage() -> impl IntoView {
    let params = use_params_map();
    let key = move || {
        let p = params.read();
        (p.get("home").unwrap_or_default(), p.get("name").unwrap_or_default())
    };
    let version = RwSignal::new(0u32);
    let detail = Resource::new(move || (key(), version.get()), |((home, name), _)| async move { describe_function(FnHome::from_slug(&home)?, FunctionName::parse(&name)?).await });
    // The metrics load on their own (CloudWatch may be slower than the
    // function), again after a test invocation.
    let window = RwSignal::new(MetricWindow::Hour);
    let invoked = RwSignal::new(0u32);
    let metrics = Resource::new(
        move || (key(), window.get(), version.get(), invoked.get()),
        |((home, name), w, _, _)| async move { get_function_metrics(FnHome::from_slug(&home)?, FunctionName::parse(&name)?, w).await },
    );
    view! {
        <PageHeader title=format!("Function · {}", params.read_untracked().get("name").unwrap_or_default()) refresh=version/>
        <p><A href="/lambda">"← All functions"</A></p>
        <Loaded resource=detail loading="Reading the function…" ok=move |d| view! { <FunctionView detail=d version invoked/> }/>
        <section class="card" id="function-metrics">
            <h2>"Metrics "<WindowPicker window/></h2>
            <Loaded resource=metrics loading="Reading the metrics…" ok=move |m| view! { <FunctionCharts m/> }/>
        </section>
    }
}

/// What an operator sizing concurrency looks at: calls, failures and
/// throttles, how many ran at once, and how long each took.
#[component]
fn FunctionCharts(m: EndpointMetrics) -> impl IntoView {
    let (invocations, errors, throttles) = (metric_total(&m, "Invocations"), metric_total(&m, "Errors"), metric_total(&m, "Throttles"));
    let peak = m.series.iter().filter(|s| s.name == "ConcurrentExecutions").flat_map(|s| s.points.iter().map(|p| p.1)).fold(0.0, f64::max);
    let calls = vec![metric_series(&m, "Invocations", "series-a", 1.0), metric_series(&m, "Errors", "series-d", 1.0), metric_series(&m, "Throttles", "series-c", 1.0)];
    let concurrent = vec![metric_series(&m, "ConcurrentExecutions", "series-b", 1.0)];
    let duration = vec![metric_series(&m, "Duration", "series-a", 1.0)];
    view! {
        <p class="muted" id="function-metrics-summary" data-invocations=invocations data-throttles=throttles data-errors=errors>
            {format!("{invocations} invocations, {errors} errors, {throttles} throttled, at most {peak} at once in the window · {}", m.source)}
        </p>
        <div class="charts">
            <LineChart title="Invocations, errors, throttles" series=calls x_label="UTC" time_axis=true/>
            <LineChart title="Concurrent executions (max)" series=concurrent x_label="UTC" time_axis=true/>
            <LineChart title="Duration (ms, average)" series=duration x_label="UTC" time_axis=true/>
        </div>
    }
}

#[component]
fn FunctionView(detail: FunctionDetail, version: RwSignal<u32>, invoked: RwSignal<u32>) -> impl IntoView {
    let home = detail.summary.home;
    // The name as the server functions take it (it came from the server, so it parses).
    let name = StoredValue::new(FunctionName::parse(&detail.summary.name));
    let facts = detail.facts.clone();
    let reserved = RwSignal::new(detail.summary.reserved.map(|r| r.to_string()).unwrap_or_default());
    let qualifier = RwSignal::new(detail.qualifiers.first().cloned().unwrap_or_default());
    // Empty and disabled where provisioned concurrency cannot be set.
    let can_provision = detail.provisioned_supported;
    let provisioned = RwSignal::new(if can_provision {
        detail.provisioned.first().map(|p| p.requested.to_string()).unwrap_or_else(|| "1".into())
    } else {
        String::new()
    });
    let provisioned_total: u32 = detail.provisioned.iter().map(|p| p.requested).sum();
    let current_reserved = detail.summary.reserved;
    let others = StoredValue::new(detail.provisioned.clone());
    // The same checks the server makes, as the operator types.
    let reserved_problem = Memo::new(move |_| match opt_number(&reserved.get()) {
        Err(e) => Some(e.message().to_string()),
        Ok(None) => None,
        Ok(Some(v)) => check_reserved(v, facts.account, current_reserved, provisioned_total).err(),
    });
    let provisioned_problem = Memo::new(move |_| match opt_number(&provisioned.get()) {
        Err(e) => Some(e.message().to_string()),
        Ok(None) => Some("give a number".into()),
        Ok(Some(v)) => {
            let q = qualifier.get();
            let rest: u32 = others.with_value(|o| o.iter().filter(|p| p.qualifier != q).map(|p| p.requested).sum());
            check_provisioned(&q, v, current_reserved, rest).err()
        }
    });
    let set_reserved = Action::new(move |value: &Option<u32>| {
        let (name, value) = (name.get_value(), *value);
        async move { set_reserved_concurrency(home, name?, value).await }
    });
    let set_provisioned = Action::new(move |(q, v): &(String, Option<u32>)| {
        let (name, q, v) = (name.get_value(), q.clone(), *v);
        async move { set_provisioned_concurrency(home, name?, q, v).await }
    });
    let event = RwSignal::new(r#"{"url": "https://example.com/dog.jpg"}"#.to_string());
    let invoke = Action::new(move |event: &String| {
        let (name, event) = (name.get_value(), event.clone());
        async move { test_invoke_function(home, name?, event).await }
    });
    Effect::new(move |_| {
        if invoke.value().get().is_some() {
            invoked.update(|n| *n += 1);
        }
    });
    Effect::new(move |_| {
        if matches!(set_reserved.value().get(), Some(Ok(_))) || matches!(set_provisioned.value().get(), Some(Ok(_))) {
            version.update(|v| *v += 1);
        }
    });
    let warnings = super::capacity_warnings(&detail.facts);
    let d = detail.clone();
    view! {
        <section class="card" id="function">
            <h2>{d.summary.name.clone()}" "<Badge text=home.label() tone="idle"/></h2>
            <dl class="facts">
                <dt>"Endpoint"</dt><dd id="function-endpoint">{or_dash(d.summary.endpoint.clone())}</dd>
                <dt>"Runtime · handler"</dt><dd>{format!("{} · {}", d.summary.runtime, or_dash(d.handler.clone()))}</dd>
                <dt>"Role"</dt><dd><code>{or_dash(d.role.clone())}</code></dd>
                <dt>"Memory · timeout"</dt><dd>{format!("{} MB · {} s", d.memory_mb.map(|m| m.to_string()).unwrap_or("—".into()), d.timeout_s.map(|m| m.to_string()).unwrap_or("—".into()))}</dd>
                <dt>"Reserved concurrency"</dt><dd id="reserved-now">{d.summary.reserved.map(|r| r.to_string()).unwrap_or_else(|| "unreserved".into())}</dd>
                {d.facts.account.map(|a| view! { <dt>"Account"</dt><dd>{format!("limit {} · unreserved {}", a.limit, a.unreserved)}</dd> })}
                {d.in_flight.map(|n| view! { <dt>"Running now · warm"</dt><dd id="in-flight">{format!("{n} · {}", d.warm.unwrap_or(0))}</dd> })}
            </dl>
        </section>
        <Card title="Capacity check" id="capacity">
            {if warnings.is_empty() {
                view! { <p class="ok-note" id="capacity-ok">{match (d.facts.endpoint_max_instances, d.facts.per_instance_per_minute) {
                    (Some(max), Some(per)) => format!("The function's concurrency fits what the endpoint absorbs ({max} instances × {per:.0} invocations/min)."),
                    _ => "No contradiction. The endpoint has served no invocation in the last day, so its throughput is not measured and overload cannot be checked.".to_string(),
                }}</p> }.into_any()
            } else {
                view! { <ul id="capacity-warnings">{warnings.into_iter().map(|w| view! { <li class=format!("warning-{}", w.severity)>{w.message}</li> }).collect_view()}</ul> }.into_any()
            }}
            {d.facts.measured_from.clone().map(|m| view! { <p class="muted" id="capacity-measured">{format!("Judged with the endpoint's measured speed: {m}; one request at a time per instance; at most {} instances.", d.facts.endpoint_max_instances.map(|n| n.to_string()).unwrap_or_else(|| "?".into()))}</p> })}
        </Card>
        <div class="two-columns">
            <Card title="Concurrency" id="concurrency">
                <form class="form-grid" on:submit=move |ev| {
                    ev.prevent_default();
                    if reserved_problem.get_untracked().is_none() {
                        if let Ok(v) = opt_number(&reserved.get_untracked()) { set_reserved.dispatch(v); }
                    }
                }>
                    <TextField label="Reserved concurrency (empty = remove)" name="reserved" value=reserved>
                        {move || reserved_problem.get().map(|m| view! { <span class="field-error" data-field="reserved">{m}</span> })}
                    </TextField>
                    <div class="form-actions"><button type="submit" class="btn btn-primary" id="save-reserved" disabled=move || reserved_problem.get().is_some() || set_reserved.pending().get()>"Save reserved"</button></div>
                </form>
                {move || set_reserved.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
                <h3>"Provisioned concurrency"</h3>
                {d.provisioned_note.clone().map(|n| view! { <p class="muted" id="provisioned-note">{n}</p> })}
                <ul id="provisioned">{d.provisioned.iter().map(|p| view! {
                    <li>{format!("{}: {} requested, {} available · {}{}", p.qualifier, p.requested, p.available.map(|a| a.to_string()).unwrap_or("—".into()), p.status, p.reason.clone().map(|r| format!(" ({r})")).unwrap_or_default())}</li>
                }).collect_view()}</ul>
                <form class="form-grid" id="provisioned-form" on:submit=move |ev| {
                    ev.prevent_default();
                    if can_provision && provisioned_problem.get_untracked().is_none() {
                        set_provisioned.dispatch((qualifier.get_untracked(), opt_number(&provisioned.get_untracked()).ok().flatten()));
                    }
                }>
                    <TextField label="Version or alias" name="qualifier" list="qualifiers" disabled=!can_provision value=qualifier>
                        <datalist id="qualifiers">{d.qualifiers.iter().map(|q| view! { <option value=q.clone()/> }).collect_view()}</datalist>
                    </TextField>
                    <TextField label="Provisioned" name="provisioned" disabled=!can_provision value=provisioned>
                        {move || provisioned_problem.get().filter(|_| can_provision).map(|m| view! { <span class="field-error" data-field="provisioned">{m}</span> })}
                    </TextField>
                    <div class="form-actions">
                        <button type="submit" class="btn btn-primary" id="save-provisioned" disabled=move || !can_provision || provisioned_problem.get().is_some() || set_provisioned.pending().get()>"Save provisioned"</button>
                        <button type="button" class="btn" id="remove-provisioned" disabled=!can_provision on:click=move |_| { set_provisioned.dispatch((qualifier.get_untracked(), None)); }>"Remove"</button>
                    </div>
                </form>
                {move || set_provisioned.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
            </Card>
            {(!d.recent_log.is_empty()).then(|| view! {
                <Card title="Recent log" id="function-log">
                    <pre class="code log">{d.recent_log.join("\n")}</pre>
                </Card>
            })}
            <Card title="Test invocation" id="test-invoke">
                <label class="field wide">
                    <span>"Event (JSON): the seeds send {\"url\": …}; {\"image_base64\": …} works too"</span>
                    <textarea id="event" rows="4" prop:value=move || event.get() on:input=move |ev| event.set(event_target_value(&ev))></textarea>
                </label>
                <button class="btn btn-primary" id="invoke-button" disabled=move || invoke.pending().get() on:click=move |_| { invoke.dispatch(event.get_untracked()); }>
                    {move || if invoke.pending().get() { "Invoking…" } else { "Invoke" }}
                </button>
                {move || invoke.value().get().map(|r| match r {
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                    Ok(o) => view! {
                        <div id="invoke-result" data-status=o.status_code>
                            <p>{format!("Status {} · {:.1} ms", o.status_code, o.duration_ms)}{o.function_error.map(|e| format!(" · function error: {e}"))}</p>
                            <pre class="code" id="invoke-payload">{o.payload}</pre>
                            <p class="muted">"Log tail"</p>
                            <pre class="code" id="log-tail">{o.log_tail}</pre>
                        </div>
                    }.into_any(),
                })}
            </Card>
        </div>
    }
}

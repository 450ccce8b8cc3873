//! A local endpoint's versions and rollouts: which model serves, what it
//! served before, a rollout in progress (its share, its step, both versions'
//! answers side by side, a one-click rollback), and the form that proposes
//! the next version.

use crate::components::{number_input, parse_u32, Card};
use super::rollout::{EndpointVersion, Guardrails, RolloutSpec, RolloutState, RolloutView, Shift, VersionSource, VersionStats, VersionsView};
use super::rollout::ShadowReport;
use super::{endpoint_versions, roll_back_rollout, shadow_test, start_rollout, Batching};
use crate::names::EndpointName;
use crate::components::{dispatch_or_show, or_dash, short_time, Badge, ConfirmButton, DataTable, ErrorPanel, Loaded, TextField};
use crate::training::{list_local_jobs, CompletedJobSelect};
use crate::ApiError;
use leptos::prelude::*;
use leptos_router::components::A;
use std::time::Duration;

fn ms(v: Option<f64>) -> String {
    v.map(|m| format!("{m:.1} ms")).unwrap_or_else(|| "—".into())
}

fn percent(v: Option<f64>) -> String {
    v.map(|p| format!("{p:.1} %")).unwrap_or_else(|| "—".into())
}

/// The versions card of local endpoint `name`.
#[component]
pub fn VersionsPanel(name: EndpointName) -> impl IntoView {
    let name = StoredValue::new(name);
    let tick = RwSignal::new(0u32);
    let versions = Resource::new(move || tick.get(), move |_| endpoint_versions(name.get_value()));
    // While a rollout runs its share and counts move: look every second.
    crate::components::poll::follow(versions, tick, Duration::from_secs(1), |v: &VersionsView| v.running().is_some());
    let start = Action::new(|spec: &RolloutSpec| start_rollout(spec.clone()));
    let back = Action::new(move |_: &()| roll_back_rollout(name.get_value()));
    Effect::new(move |_| {
        if start.value().get().is_some_and(|r| r.is_ok()) || back.value().get().is_some_and(|r| r.is_ok()) {
            tick.update(|n| *n += 1);
        }
    });
    let on_back = Callback::new(move |_| {
        back.dispatch(());
    });
    // "Roll back to version N" after a rollout ended: that version, all at once.
    let on_again = Callback::new(move |version: u32| {
        start.dispatch(RolloutSpec {
            endpoint: name.get_value().into(),
            source: VersionSource::Version { version },
            instances: None,
            batching: None,
            shift: Shift::AllAtOnce,
            bake_seconds: 0,
            guardrails: Guardrails { min_agreement_percent: None, ..Guardrails::default() },
            accept_class_change: true,
        });
    });
    view! {
        <Card title="Versions and rollouts" id="versions">
            <p class="muted">
                "A rollout loads the next version's replicas beside the live ones and warms them up, then moves traffic to them "
                "all at once, by canary or linearly, judging each step: too many failed answers, a slow p99, or too little agreement "
                "with the live version (each image the new version answers is also scored by the live one) rolls it back by itself. "
                "No request is dropped: each one is answered by the version it was sent to, named in the "<code>"x-sagedeck-model-version"</code>" header."
            </p>
            <Loaded resource=versions loading="Reading the versions…" ok=move |v| view! { <VersionsBody v on_back on_again back_pending=back.pending().into() again_pending=start.pending().into()/> }/>
            {move || back.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
            <RolloutForm endpoint=name.get_value().to_string() start/>
        </Card>
    }
}

#[component]
fn VersionsBody(v: VersionsView, on_back: Callback<()>, on_again: Callback<u32>, back_pending: Signal<bool>, again_pending: Signal<bool>) -> impl IntoView {
    let running = v.running().cloned();
    let live = v.live_version;
    // The version served before the live one: the rollback target once a rollout has ended.
    let previous = v
        .rollouts
        .iter()
        .find(|r| r.state == RolloutState::Completed && r.to_version == live)
        .map(|r| r.from_version)
        .filter(|_| running.is_none());
    view! {
        {running.map(|r| view! { <RunningRollout r on_back back_pending/> })}
        <DataTable id="version-table" compact=true headers=&["Version", "Model", "Test accuracy", "Classes", "Replicas · batching", "Proposed", "Served all traffic", ""]>
            {v.versions.into_iter().map(|ver| version_row(ver, previous, on_again, again_pending)).collect_view()}
        </DataTable>
        {(!v.rollouts.is_empty()).then(|| view! {
            <h3>"Rollouts"</h3>
            <DataTable id="rollout-table" compact=true headers=&["#", "From → to", "Plan", "State", "Outcome", "Answers (old · new)", "Started"]>
                {v.rollouts.into_iter().map(|r| {
                    let answers = format!("{} · {}", r.live.requests, r.candidate.requests);
                    view! {
                        <tr data-state=r.state.as_str()>
                            <td>{r.id}</td>
                            <td>{format!("{} → {}", r.from_version, r.to_version)}</td>
                            <td>{r.plan.clone()}</td>
                            <td><Badge text=r.state.words() tone=r.state.tone()/></td>
                            <td class="rollout-outcome">{or_dash(r.outcome.clone())}</td>
                            <td>{answers}</td>
                            <td>{format!("{} by {}", short_time(&r.started_at), r.started_by)}</td>
                        </tr>
                    }
                }).collect_view()}
            </DataTable>
        })}
    }
}

fn version_row(ver: EndpointVersion, previous: Option<u32>, on_again: Callback<u32>, pending: Signal<bool>) -> impl IntoView {
    let b = ver.batching;
    let served = match (&ver.live_from, &ver.live_until) {
        (Some(from), Some(until)) => format!("{} – {}", short_time(from), short_time(until)),
        (Some(from), None) => format!("since {}", short_time(from)),
        _ => "never".into(),
    };
    let number = ver.version;
    let model = match ver.job_id {
        Some(id) => view! { <A href=format!("/training/local/{id}")>{ver.source.clone()}</A> }.into_any(),
        None => view! { <span>{ver.source.clone()}</span> }.into_any(),
    };
    view! {
        <tr data-version=number data-live=ver.live.to_string()>
            <td>{format!("v{number} ")}{ver.live.then(|| view! { <Badge text="live" tone="ok"/> })}</td>
            <td>{model}</td>
            <td>{ver.test_accuracy.map(|a| format!("{:.1} %", a * 100.0)).unwrap_or_else(|| "artifact missing".into())}</td>
            <td title=ver.classes.join(", ")>{ver.classes.len()}</td>
            <td>{format!("{} · batch ≤ {}, wait ≤ {} ms", ver.instances, b.max_batch, b.max_wait_ms)}</td>
            <td>{format!("{} by {}", short_time(&ver.created_at), ver.created_by)}</td>
            <td>{served}</td>
            <td>
                {(previous == Some(number)).then(|| view! {
                    <ConfirmButton
                        label=format!("Roll back to v{number}")
                        question=format!("Move all traffic back to version {number} now?")
                        on_confirm=Callback::new(move |_| on_again.run(number))
                        needs="endpoints/rollout/start"
                        pending
                    />
                })}
            </td>
        </tr>
    }
}

/// The rollout in progress: where it is in its plan, both versions' answers in this step.
#[component]
fn RunningRollout(r: RolloutView, on_back: Callback<()>, back_pending: Signal<bool>) -> impl IntoView {
    let step = r.steps.get(r.step as usize).copied();
    let hold = step.map(|s| s.hold_seconds).unwrap_or(0);
    let into = r.step_seconds.unwrap_or(0.0);
    let width = format!("width: {}%", r.percent);
    let steps = r
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let class = if (i as u32) < r.step { "done" } else if i as u32 == r.step { "current" } else { "" };
            view! { <li class=class>{format!("{}. {} % for {}", i + 1, s.percent, super::rollout::seconds_text(s.hold_seconds))}</li> }
        })
        .collect_view();
    let row = |label: &'static str, f: fn(&VersionStats) -> String, live: &VersionStats, next: &VersionStats| {
        view! { <tr><th>{label}</th><td>{f(live)}</td><td>{f(next)}</td></tr> }
    };
    let (old, new) = (&r.live, &r.candidate);
    view! {
        <div class="rollout-live" id="rollout-running" data-percent=r.percent data-step=r.step>
            <p>
                <strong>{format!("Rollout #{}: version {} → {}", r.id, r.from_version, r.to_version)}</strong>
                {format!(" · {} · started by {}", r.plan, r.started_by)}
            </p>
            <div class="progress"><div class="progress-bar" style=width></div></div>
            <p class="progress-text" id="rollout-progress">
                {format!("{} % of requests to version {} · step {} of {} · {:.0} of {} s", r.percent, r.to_version, r.step + 1, r.steps.len(), into.min(f64::from(hold)), hold)}
            </p>
            <ul class="rollout-steps">{steps}</ul>
            <table class="table compact" id="rollout-compare">
                <thead><tr><th>"This step"</th><th>{format!("Version {} (live)", r.from_version)}</th><th>{format!("Version {} (new)", r.to_version)}</th></tr></thead>
                <tbody>
                    {row("Requests", |s| s.requests.to_string(), old, new)}
                    {row("Failed", |s| format!("{} ({})", s.errors, percent(s.error_percent())), old, new)}
                    {row("p50", |s| ms(s.p50_ms), old, new)}
                    {row("p99", |s| ms(s.p99_ms), old, new)}
                    {row("Agrees with the live version", |s| match s.agreement_percent() {
                        Some(a) => format!("{a:.1} % of {}", s.compared),
                        None => "—".into(),
                    }, old, new)}
                </tbody>
            </table>
            <ConfirmButton
                label="Roll back now"
                question=format!("Send all traffic back to version {} and unload version {}?", r.from_version, r.to_version)
                on_confirm=on_back
                needs="endpoints/rollout/rollback"
                pending=back_pending
                danger=true
            />
        </div>
    }
}

/// Proposes the next version: a completed job, how traffic moves, when to roll back.
#[component]
fn RolloutForm(endpoint: String, start: Action<RolloutSpec, Result<VersionsView, ApiError>>) -> impl IntoView {
    let jobs = Resource::new(|| (), |_| list_local_jobs());
    let job = RwSignal::new(String::new());
    let sagemaker_job = RwSignal::new(String::new());
    let shift = RwSignal::new("canary".to_string());
    let canary_percent = RwSignal::new("10".to_string());
    let hold = RwSignal::new("60".to_string());
    let steps = RwSignal::new("4".to_string());
    let interval = RwSignal::new("30".to_string());
    let bake = RwSignal::new("30".to_string());
    let instances = RwSignal::new(String::new());
    let max_batch = RwSignal::new(String::new());
    let max_wait = RwSignal::new(String::new());
    let queue = RwSignal::new(String::new());
    let d = Guardrails::default();
    let max_errors = RwSignal::new(d.max_error_percent.to_string());
    let max_p99 = RwSignal::new(String::new());
    let min_agreement = RwSignal::new(d.min_agreement_percent.map(|a| a.to_string()).unwrap_or_default());
    let min_requests = RwSignal::new(d.min_requests.to_string());
    let accept = RwSignal::new(false);
    let problem = RwSignal::new(None::<ApiError>);
    let endpoint = StoredValue::new(endpoint);
    let optional = |label: &str, text: String| -> Result<Option<f64>, ApiError> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(None);
        }
        t.parse().map(Some).map_err(|_| ApiError::Invalid(format!("{label} must be a number, not {t:?}")))
    };
    let spec = move || -> Result<RolloutSpec, ApiError> {
        let remote = sagemaker_job.get().trim().to_string();
        let source = if remote.is_empty() {
            VersionSource::LocalJob { job_id: job.get().parse().map_err(|_| ApiError::Invalid("choose a completed local job".into()))? }
        } else {
            VersionSource::SageMakerJob { name: remote }
        };
        let shift = match shift.get().as_str() {
            "all" => Shift::AllAtOnce,
            "linear" => Shift::Linear { steps: parse_u32("steps", &steps.get())?, interval_seconds: parse_u32("interval", &interval.get())? },
            _ => Shift::Canary { percent: parse_u32("canary percent", &canary_percent.get())?, hold_seconds: parse_u32("hold", &hold.get())? },
        };
        let spec = RolloutSpec {
            endpoint: endpoint.get_value(),
            source,
            instances: if instances.get().trim().is_empty() { None } else { Some(parse_u32("replicas", &instances.get())?) },
            // Batching changes as a whole: all three, or none (as now).
            batching: match (max_batch.get().trim().is_empty(), max_wait.get().trim().is_empty(), queue.get().trim().is_empty()) {
                (true, true, true) => None::<Batching>,
                _ => Some(Batching {
                    max_batch: parse_u32("max batch", &max_batch.get())?,
                    max_wait_ms: parse_u32("max wait", &max_wait.get())?,
                    queue_capacity: parse_u32("queue capacity", &queue.get())?,
                }),
            },
            shift,
            bake_seconds: parse_u32("bake time", &bake.get())?,
            guardrails: Guardrails {
                max_error_percent: optional("max failed %", max_errors.get())?.unwrap_or(0.0),
                max_p99_ms: optional("max p99", max_p99.get())?.map(|v| v as u32),
                min_agreement_percent: optional("min agreement", min_agreement.get())?,
                min_requests: parse_u32("min requests", &min_requests.get())?,
            },
            accept_class_change: accept.get(),
        };
        spec.validate()?;
        Ok(spec)
    };
    let plan = move || spec().map(|s| s.plan_text()).unwrap_or_default();
    let folder = RwSignal::new(String::new());
    let shadow = Action::new(|(name, source, folder): &(String, VersionSource, String)| {
        let (name, source, folder) = (EndpointName::parse(name), source.clone(), folder.clone());
        async move { shadow_test(name?, source, folder, 200).await }
    });
    let run_shadow = move |_| dispatch_or_show(shadow, problem, spec().map(|s| (s.endpoint, s.source, folder.get())));
    view! {
        <h3>"Roll out a new version"</h3>
        <form class="form-grid" id="rollout-form" on:submit=move |ev| {
            ev.prevent_default();
            dispatch_or_show(start, problem, spec());
        }>
            <label class="field wide">
                <span>"Completed local job"</span>
                <CompletedJobSelect jobs job name="rollout_job"/>
            </label>
            <TextField label="…or a completed SageMaker training job (its model.tar.gz is downloaded)" name="rollout_sagemaker_job" placeholder="SageMaker job name" wide=true value=sagemaker_job/>
            <label class="field">
                <span>"Traffic shift"</span>
                <select name="shift" on:change=move |ev| shift.set(event_target_value(&ev))>
                    <option value="canary" selected=true>"Canary"</option>
                    <option value="linear">"Linear"</option>
                    <option value="all">"All at once"</option>
                </select>
            </label>
            <div class="field-group" class:hidden=move || shift.get() != "canary">
                {number_input("Canary share (%)", "canary_percent", canary_percent)}
                {number_input("Canary time (s)", "hold_seconds", hold)}
            </div>
            <div class="field-group" class:hidden=move || shift.get() != "linear">
                {number_input("Steps", "steps", steps)}
                {number_input("Seconds per step", "interval_seconds", interval)}
            </div>
            {number_input("Bake time at 100 % (s)", "bake_seconds", bake)}
            {number_input("Replicas (empty: as now)", "rollout_instances", instances)}
            {number_input("Max batch (empty: as now)", "rollout_max_batch", max_batch)}
            {number_input("Max wait, ms (empty: as now)", "rollout_max_wait_ms", max_wait)}
            {number_input("Queue capacity (empty: as now)", "rollout_queue_capacity", queue)}
            {number_input("Roll back above failed (%)", "max_error_percent", max_errors)}
            {number_input("…or above p99 (ms, empty: none)", "max_p99_ms", max_p99)}
            {number_input("…or below agreement (%, empty: none)", "min_agreement_percent", min_agreement)}
            {number_input("Judge after (requests)", "min_requests", min_requests)}
            <label class="field wide checkbox">
                <input type="checkbox" name="accept_class_change" prop:checked=move || accept.get() on:change=move |ev| accept.set(event_target_checked(&ev))/>
                <span>"The new version may have other classes (names or order) than the live one"</span>
            </label>
            <p class="muted wide" id="rollout-plan">{plan}</p>
            <div class="form-actions">
                <button type="submit" class="btn btn-primary" id="start-rollout" title=crate::auth::needs_title("endpoints/rollout/start")
                    disabled=move || start.pending().get() || !crate::auth::allowed("endpoints/rollout/start")>
                    {move || if start.pending().get() { "Loading and warming the new version…" } else { "Start rollout" }}
                </button>
            </div>
        </form>
        <div class="shadow-test">
            <p class="muted">"Before rolling out: send a labelled folder (one folder per class, or a dataset's test/) through the live version and the one chosen above, side by side. Nothing is routed to it."</p>
            <div class="with-button">
                <input name="shadow_folder" placeholder="/path/to/labelled/folder" prop:value=move || folder.get() on:input=move |ev| folder.set(event_target_value(&ev))/>
                <button type="button" class="btn" id="run-shadow" on:click=run_shadow title=crate::auth::needs_title("endpoints/shadow")
                    disabled=move || shadow.pending().get() || !crate::auth::allowed("endpoints/shadow")>
                    {move || if shadow.pending().get() { "Sending the folder through both…" } else { "Shadow test" }}
                </button>
            </div>
            {move || shadow.value().get().map(|r| match r {
                Ok(report) => view! { <ShadowTable report/> }.into_any(),
                Err(error) => view! { <ErrorPanel error/> }.into_any(),
            })}
        </div>
        {move || problem.get().map(|error| view! { <ErrorPanel error/> })}
        {move || start.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
    }
}

#[component]
fn ShadowTable(report: ShadowReport) -> impl IntoView {
    let (l, p) = (report.live.clone(), report.proposed.clone());
    let accuracy = |s: &super::rollout::ShadowSide| s.accuracy().map(|a| format!("{:.1} % ({} of {})", a * 100.0, s.correct, s.judged)).unwrap_or_else(|| "—".into());
    let agreement = report
        .agreement_percent()
        .map(|a| format!("They name the same top class on {a:.1} % of the images ({} of {}) · {} images in {:.1} s.", report.agreed, report.compared, report.images, report.seconds))
        .unwrap_or_else(|| "No image was answered by both.".into());
    view! {
        <table class="table compact" id="shadow-report" data-agreement=report.agreement_percent().map(|a| format!("{a:.1}"))>
            <thead><tr><th></th><th>{l.label.clone()}</th><th>{p.label.clone()}</th></tr></thead>
            <tbody>
                <tr><th>"Accuracy"</th><td>{accuracy(&l)}</td><td>{accuracy(&p)}</td></tr>
                <tr><th>"Failed"</th><td>{l.failed}</td><td>{p.failed}</td></tr>
                <tr><th>"p50"</th><td>{ms(l.p50_ms)}</td><td>{ms(p.p50_ms)}</td></tr>
                <tr><th>"p99"</th><td>{ms(l.p99_ms)}</td><td>{ms(p.p99_ms)}</td></tr>
            </tbody>
        </table>
        <p id="shadow-agreement">{agreement}</p>
        {(!report.disagreements.is_empty()).then(|| view! {
            <DataTable id="shadow-disagreements" compact=true headers=&["Image", "Truth", "Live says", "Proposed says"]>
                {report.disagreements.iter().map(|d| view! {
                    <tr><td><code>{d.path.rsplit('/').next().unwrap_or_default().to_string()}</code></td><td>{d.truth.clone()}</td><td>{d.live.clone()}</td><td>{d.proposed.clone()}</td></tr>
                }).collect_view()}
            </DataTable>
        })}
    }
}

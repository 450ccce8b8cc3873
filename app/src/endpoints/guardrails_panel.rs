//! The endpoint page's Alarms section (both kinds of endpoint) and a
//! SageMaker endpoint's rollouts: progress as DescribeEndpoint reports it,
//! past rollouts, rollback, and the form that starts one.

use super::guardrails::{AlarmKind, AlarmSpec, EndpointAlarm, SageMakerRolloutSpec, SageMakerRollouts};
use crate::components::{number_input, parse_u32, Card};
use super::rollout::Shift;
use super::{deployable_training_jobs, endpoint_alarms, put_endpoint_alarm, roll_back_sagemaker, sagemaker_rollouts, start_sagemaker_rollout, Backend};
use crate::components::{dispatch_or_show, or_dash, short_time, Badge, ConfirmButton, DataTable, ErrorPanel, Loaded, Loading, TextField};
use crate::names::EndpointName;
use crate::ApiError;
use leptos::prelude::*;
use std::time::Duration;

/// Bumped when an alarm is created, so the rollout form lists it at once.
#[derive(Clone, Copy)]
pub struct AlarmsChanged(pub RwSignal<u32>);

fn alarm_tone(state: &str) -> &'static str {
    match state {
        "OK" => "ok",
        "ALARM" => "bad",
        _ => "idle",
    }
}

fn rollout_tone(state: &str) -> &'static str {
    match state {
        "completed" => "ok",
        "updating" => "busy",
        _ => "bad",
    }
}

#[component]
fn AlarmTable(alarms: Vec<EndpointAlarm>) -> impl IntoView {
    if alarms.is_empty() {
        return view! { <p class="empty">"No alarm watches this endpoint yet."</p> }.into_any();
    }
    view! {
        <DataTable id="alarm-table" compact=true headers=&["Alarm", "State", "Watches", "Why", "Made by"]>
            {alarms.into_iter().map(|a| view! {
                <tr data-alarm=a.name.clone() data-state=a.state.clone()>
                    <td><code>{a.name.clone()}</code></td>
                    <td><Badge text=a.state.clone() tone=alarm_tone(&a.state)/></td>
                    <td>{a.description.clone()}</td>
                    <td class="muted">{a.reason.clone()}{a.updated_at.as_deref().map(|t| format!(" ({})", short_time(t)))}</td>
                    <td>{if a.ours { "Sagedeck" } else { "someone else" }}</td>
                </tr>
            }).collect_view()}
        </DataTable>
    }
    .into_any()
}

/// The endpoint's alarms and the form that adds one.
#[component]
pub fn AlarmsPanel(backend: Backend, name: EndpointName) -> impl IntoView {
    let name = StoredValue::new(name);
    let tick = RwSignal::new(0u32);
    let alarms = Resource::new(move || tick.get(), move |_| endpoint_alarms(backend, name.get_value()));
    // States change with the traffic: look again every 30 s.
    crate::components::poll::follow(alarms, tick, Duration::from_secs(30), |_| true);
    let kind = RwSignal::new("ErrorRate".to_string());
    let threshold = RwSignal::new("5".to_string());
    let period = RwSignal::new("60".to_string());
    let evaluations = RwSignal::new("3".to_string());
    let datapoints = RwSignal::new("2".to_string());
    let problem = RwSignal::new(None::<ApiError>);
    let put = Action::new(move |spec: &AlarmSpec| put_endpoint_alarm(backend, spec.clone()));
    let changed = use_context::<AlarmsChanged>();
    Effect::new(move |_| {
        if put.value().get().is_some_and(|r| r.is_ok()) {
            tick.update(|n| *n += 1);
            if let Some(AlarmsChanged(c)) = changed {
                c.update(|n| *n += 1);
            }
        }
    });
    let spec = move || -> Result<AlarmSpec, ApiError> {
        let spec = AlarmSpec {
            endpoint: name.get_value().into(),
            kind: if kind.get() == "LatencyP99" { AlarmKind::LatencyP99 } else { AlarmKind::ErrorRate },
            threshold: threshold.get().trim().parse().map_err(|_| ApiError::Invalid(format!("threshold must be a number, not {:?}", threshold.get())))?,
            period_seconds: parse_u32("period", &period.get())?,
            evaluation_periods: parse_u32("evaluation periods", &evaluations.get())?,
            datapoints_to_alarm: parse_u32("datapoints to alarm", &datapoints.get())?,
        };
        spec.validate()?;
        Ok(spec)
    };
    let explained = move || spec().map(|s| format!("{}: {}", s.name(), s.describe())).unwrap_or_default();
    let source = match backend {
        Backend::SageMaker => "CloudWatch alarms on this endpoint (every metric alarm with its EndpointName, whoever made it). A rollout can name them: when one fires during the deployment, SageMaker rolls back.",
        Backend::Local => "Evaluated by Sagedeck on its own per-minute metrics with CloudWatch's rules: a period's value above the threshold breaches; M breaching of the last N complete periods is ALARM; periods without traffic do not breach.",
    };
    view! {
        <Card title="Alarms" id="alarms">
            <p class="muted">{source}</p>
            <Loaded resource=alarms loading="Reading the alarms…" ok=move |list| view! { <AlarmTable alarms=list/> }/>
            <form class="form-grid" id="alarm-form" on:submit=move |ev| {
                ev.prevent_default();
                dispatch_or_show(put, problem, spec());
            }>
                <label class="field">
                    <span>"Watch"</span>
                    <select name="alarm_kind" on:change=move |ev| {
                        let k = event_target_value(&ev);
                        threshold.set(if k == "LatencyP99" { "500".into() } else { "5".into() });
                        kind.set(k);
                    }>
                        <option value="ErrorRate" selected=true>"5XX errors (% of invocations)"</option>
                        <option value="LatencyP99">"ModelLatency p99 (ms)"</option>
                    </select>
                </label>
                {number_input("Threshold", "alarm_threshold", threshold)}
                {number_input("Period (s, whole minutes)", "alarm_period", period)}
                {number_input("Evaluation periods (N)", "alarm_evaluations", evaluations)}
                {number_input("Datapoints to alarm (M)", "alarm_datapoints", datapoints)}
                <p class="muted wide" id="alarm-explained">{explained}</p>
                <div class="form-actions">
                    <button type="submit" class="btn" id="put-alarm" title=crate::auth::needs_title("endpoints/alarms/put")
                        disabled=move || put.pending().get() || !crate::auth::allowed("endpoints/alarms/put")>"Create or replace the alarm"</button>
                </div>
            </form>
            {move || problem.get().map(|error| view! { <ErrorPanel error/> })}
            {move || put.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
        </Card>
    }
}

/// A SageMaker endpoint's rollouts and the form that starts one.
#[component]
pub fn SageMakerRolloutPanel(name: EndpointName) -> impl IntoView {
    let name = StoredValue::new(name);
    let tick = RwSignal::new(0u32);
    let alarms_changed = use_context::<AlarmsChanged>().map(|c| c.0);
    let rollouts = Resource::new(move || (tick.get(), alarms_changed.map(|c| c.get())), move |_| sagemaker_rollouts(name.get_value()));
    crate::components::poll::follow(rollouts, tick, Duration::from_secs(5), SageMakerRollouts::updating);
    let jobs = Resource::new(|| (), |_| deployable_training_jobs());
    let local_jobs = Resource::new(|| (), |_| crate::training::list_local_jobs());
    let model_s3 = RwSignal::new(String::new());
    let start = Action::new(|spec: &SageMakerRolloutSpec| start_sagemaker_rollout(spec.clone()));
    let back = Action::new(move |_: &()| roll_back_sagemaker(name.get_value()));
    Effect::new(move |_| {
        if start.value().get().is_some_and(|r| r.is_ok()) || back.value().get().is_some_and(|r| r.is_ok()) {
            tick.update(|n| *n += 1);
        }
    });
    let job = RwSignal::new(String::new());
    let instance_type = RwSignal::new(String::new());
    let count = RwSignal::new(String::new());
    let shift = RwSignal::new("canary".to_string());
    let canary = RwSignal::new("20".to_string());
    let wait = RwSignal::new("600".to_string());
    let steps = RwSignal::new("4".to_string());
    let bake = RwSignal::new("300".to_string());
    let termination = RwSignal::new("300".to_string());
    let chosen = RwSignal::new(Vec::<String>::new());
    let problem = RwSignal::new(None::<ApiError>);
    let spec = move || -> Result<SageMakerRolloutSpec, ApiError> {
        let shift = match shift.get().as_str() {
            "all" => Shift::AllAtOnce,
            "linear" => Shift::Linear { steps: parse_u32("steps", &steps.get())?, interval_seconds: parse_u32("wait", &wait.get())? },
            _ => Shift::Canary { percent: parse_u32("canary percent", &canary.get())?, hold_seconds: parse_u32("wait", &wait.get())? },
        };
        let t = instance_type.get().trim().to_string();
        let spec = SageMakerRolloutSpec {
            endpoint: name.get_value().into(),
            training_job: if job.get().starts_with("local:") { String::new() } else { job.get() },
            local_job: job.get().strip_prefix("local:").and_then(|id| id.parse().ok()),
            model_s3: model_s3.get().trim().to_string(),
            instance_type: (!t.is_empty()).then_some(t),
            instance_count: if count.get().trim().is_empty() { None } else { Some(parse_u32("instances", &count.get())?) },
            shift,
            bake_seconds: parse_u32("bake", &bake.get())?,
            termination_wait_seconds: parse_u32("termination wait", &termination.get())?,
            alarms: chosen.get(),
        };
        spec.plan(spec.instance_count.unwrap_or(2))?;
        Ok(spec)
    };
    let plan = move || spec().and_then(|s| s.plan(s.instance_count.unwrap_or(2))).map(|p| p.describe()).unwrap_or_default();
    view! {
        <Card title="Rollouts" id="sagemaker-rollouts"
            note=concat!(
                "A rollout creates a model and an endpoint configuration and calls UpdateEndpoint with a blue/green deployment ",
                "configuration. The traffic shift happens inside SageMaker: Sagedeck cannot see the split, only the stage ",
                "DescribeEndpoint reports (Creating, ActivatingTraffic, Baking) and how it ended. When an alarm it names fires, SageMaker rolls back.",
            )>
            <Transition fallback=|| view! { <Loading text="Reading the deployment…"/> }>
                {move || Suspend::new(async move {
                    match rollouts.await {
                        Ok(v) => {
                            let previous = v.previous_config.clone();
                            let updating = v.updating();
                            view! {
                                <p id="sagemaker-deployment" data-status=v.status.clone()>
                                    <Badge text=v.status.clone() tone=super::status_tone(&v.status)/>
                                    {format!(" configuration {}", v.config)}
                                    {v.failure.clone().map(|f| view! { <span class="bad">{format!(" · {f}")}</span> })}
                                </p>
                                {v.progress.iter().map(|p| view! {
                                    <div class="rollout-live" id="sagemaker-progress">
                                        <p><strong>{format!("Variant {} · {} instances", p.variant, p.instances)}</strong></p>
                                        <ul class="rollout-steps">
                                            {p.statuses.iter().map(|(s, m, at)| view! { <li class="current">{format!("{s}: {m}{}", at.as_deref().map(|t| format!(" (since {})", short_time(t))).unwrap_or_default())}</li> }).collect_view()}
                                        </ul>
                                    </div>
                                }).collect_view()}
                                {previous.filter(|_| !updating).map(|config| view! {
                                    <ConfirmButton
                                        label=format!("Roll back to {config}")
                                        question=format!("UpdateEndpoint back to {config}, all at once?")
                                        on_confirm=Callback::new(move |_| { back.dispatch(()); })
                                        needs="endpoints/sagemaker/rollout/rollback"
                                        pending=back.pending()
                                    />
                                })}
                                {(!v.rollouts.is_empty()).then(|| view! {
                                    <DataTable id="sagemaker-rollout-table" compact=true headers=&["#", "From → to", "Serves", "Plan", "State", "Outcome", "Started"]>
                                        {v.rollouts.iter().map(|r| view! {
                                            <tr data-state=r.state.clone()>
                                                <td>{r.id}</td>
                                                <td>{format!("{} → {}", r.from_config, r.to_config)}</td>
                                                <td>{format!("{} {}", r.source, r.instances)}</td>
                                                <td>{r.plan.clone()}</td>
                                                <td><Badge text=r.state.replace('_', " ") tone=rollout_tone(&r.state)/></td>
                                                <td class="rollout-outcome">{or_dash(r.outcome.clone())}</td>
                                                <td>{format!("{} by {}", short_time(&r.started_at), r.started_by)}</td>
                                            </tr>
                                        }).collect_view()}
                                    </DataTable>
                                })}
                                <fieldset class="field wide checkbox" id="rollout-alarms">
                                    <span>"Roll back when these alarms fire:"</span>
                                    {v.alarms.iter().map(|a| {
                                        let alarm = a.name.clone();
                                        let (checked, toggled) = (alarm.clone(), alarm.clone());
                                        view! {
                                            <label class="inline">
                                                <input type="checkbox" name="rollout_alarm" value=alarm.clone()
                                                    prop:checked=move || chosen.with(|c| c.contains(&checked))
                                                    on:change=move |ev| {
                                                        let on = event_target_checked(&ev);
                                                        chosen.update(|c| { c.retain(|x| *x != toggled); if on { c.push(toggled.clone()); } });
                                                    }/>
                                                {format!(" {alarm} ")}
                                            </label>
                                        }
                                    }).collect_view()}
                                    {v.alarms.is_empty().then(|| view! { <span class="muted">"none yet: create them in the Alarms section"</span> })}
                                    {v.alarms_note.clone().map(|n| view! { <span class="muted">{n}</span> })}
                                </fieldset>
                            }.into_any()
                        }
                        Err(error) => view! { <ErrorPanel error/> }.into_any(),
                    }
                })}
            </Transition>
            {move || back.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
            <h3>"Roll out a new version"</h3>
            <form class="form-grid" id="sagemaker-rollout-form" on:submit=move |ev| {
                ev.prevent_default();
                dispatch_or_show(start, problem, spec());
            }>
                <label class="field wide">
                    <span>"Completed job, SageMaker or local (none: keep the model, change the instances)"</span>
                    <Suspense fallback=|| view! { <select disabled=true><option>"Loading…"</option></select> }>
                        {move || Suspend::new(async move {
                            let listed = jobs.await.unwrap_or_default();
                            let local: Vec<_> = local_jobs.await.unwrap_or_default().into_iter().filter(|j| j.status == crate::training::JobStatus::Completed).collect();
                            view! {
                                <select name="sm_rollout_job" on:change=move |ev| job.set(event_target_value(&ev))>
                                    <option value="">"— keep the live model —"</option>
                                    {listed.into_iter().map(|j| { let n = j.name.clone(); view! { <option value=n.clone() selected=job.get_untracked() == n>{format!("SageMaker job {}", j.name)}</option> } }).collect_view()}
                                    {local.into_iter().map(|j| { let v = format!("local:{}", j.id); view! { <option value=v.clone() selected=job.get_untracked() == v>{format!("local job #{} {}", j.id, j.name)}</option> } }).collect_view()}
                                </select>
                            }
                        })}
                    </Suspense>
                </label>
                <label class="field wide" class:hidden=move || !job.get().starts_with("local:")>
                    <span>"Put the local job's model.tar.gz under (s3://bucket/prefix)"</span>
                    <input name="sm_rollout_model_s3" placeholder="s3://my-bucket/models" prop:value=move || model_s3.get() on:input=move |ev| model_s3.set(event_target_value(&ev))/>
                </label>
                <TextField label="Instance type (empty: as now)" name="sm_rollout_type" placeholder="ml.m5.large" value=instance_type/>
                {number_input("Instances (empty: as now)", "sm_rollout_count", count)}
                <label class="field">
                    <span>"Traffic shift"</span>
                    <select name="sm_shift" on:change=move |ev| shift.set(event_target_value(&ev))>
                        <option value="canary" selected=true>"Canary"</option>
                        <option value="linear">"Linear"</option>
                        <option value="all">"All at once"</option>
                    </select>
                </label>
                <div class="field-group" class:hidden=move || shift.get() != "canary">{number_input("Canary (% of the new fleet, ≤ 50)", "sm_canary", canary)}</div>
                <div class="field-group" class:hidden=move || shift.get() != "linear">{number_input("Steps (2 to 10)", "sm_steps", steps)}</div>
                <div class="field-group" class:hidden=move || shift.get() == "all">{number_input("Bake each step (s, ≤ 3600)", "sm_wait", wait)}</div>
                <div class="field-group" class:hidden=move || shift.get() != "all">{number_input("Bake (s, ≤ 3600)", "sm_bake", bake)}</div>
                {number_input("Keep the old fleet after (s)", "sm_termination", termination)}
                <p class="muted wide" id="sagemaker-rollout-plan">{plan}</p>
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary" id="start-sagemaker-rollout" title=crate::auth::needs_title("endpoints/sagemaker/rollout/start")
                        disabled=move || start.pending().get() || !crate::auth::allowed("endpoints/sagemaker/rollout/start")>
                        {move || if start.pending().get() { "Creating the configuration…" } else { "Start rollout" }}
                    </button>
                </div>
            </form>
            {move || problem.get().map(|error| view! { <ErrorPanel error/> })}
            {move || start.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
        </Card>
    }
}

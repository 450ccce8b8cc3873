//! The Scaling pages: every endpoint with its policy, and one endpoint's
//! scaling: its variants, the policy editor with live validation, the
//! what-if simulator (current policy against the one being typed, run in the
//! browser), the scaling activities and the changes made here, revertible.

use super::simulate::{simulate, Conditions, Pattern, Simulation};
use super::{
    describe_scaling, get_invocation_trace, get_scaling_overview, put_scaling_policy, remove_scaling_policy, EndpointScaling,
    PolicyOnTarget, ScalingOverview, ScalingPolicy, VariantScaling, POLICY_NAME, SEVERAL_POLICIES,
};
use crate::components::chart::{LineChart, Series};
use crate::components::{short_time, Badge, Card, ConfirmButton, DataTable, ErrorPanel, Loaded, Loading, PageHeader, TextField};
use crate::endpoints::{status_tone, Backend};
use crate::journal::ChangeTable;
use crate::overview::recent_changes;
use crate::training::spec::FieldError;
use crate::names::{EndpointName, VariantName};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

/// A policy in one line, with its name when it was made by hand.
pub fn summary(p: &ScalingPolicy) -> String {
    format!(
        "{}{}–{} instances · target {} invocations/instance/min · cooldown in {} s / out {} s{}",
        p.name.as_ref().map(|n| format!("{n}: ")).unwrap_or_default(),
        p.min_instances,
        p.max_instances,
        p.target_value,
        p.scale_in_cooldown_s,
        p.scale_out_cooldown_s,
        if p.disable_scale_in { " · scale-in off" } else { "" }
    )
}

fn scaling_path(backend: Backend, name: &str) -> String {
    format!("/scaling/{}/{name}", backend.slug())
}

#[component]
pub fn ScalingPage() -> impl IntoView {
    let overview = Resource::new(|| (), |_| get_scaling_overview());
    view! {
        <PageHeader title="Scaling"
            lede=concat!(
                "Target tracking on invocations per instance per minute, as SageMaker's auto-scaling does it: ",
                "SageMaker variants through Application Auto Scaling, local endpoints by adding and removing replicas under the same rules. ",
                "Open an endpoint to edit its policy and simulate it before applying.",
            )/>
        <Card title="Endpoints">
            <Loaded resource=overview loading="Reading endpoints and their policies…" ok=move |o| view! { <OverviewTable overview=o/> }/>
        </Card>
    }
}

#[component]
fn OverviewTable(overview: ScalingOverview) -> impl IntoView {
    let note = overview.sagemaker_note.clone();
    view! {
        {if overview.rows.is_empty() {
            view! { <p class="empty">"No endpoints yet. Deploy one on the "<A href="/endpoints">"Endpoints"</A>" page."</p> }.into_any()
        } else {
            view! {
                <DataTable id="scaling-endpoints" headers=&["Endpoint", "Runs on", "Status", "Instances", "Auto-scaling"]>
                    {overview.rows.into_iter().map(|r| {
                        let href = scaling_path(r.backend, &r.endpoint);
                        let (row_name, link_name) = (r.endpoint.clone(), r.endpoint.clone());
                        view! {
                            <tr data-endpoint=row_name data-backend=r.backend.slug()>
                                <td><A href=href>{link_name}</A></td>
                                <td><span class=format!("where where-{}", r.backend.slug())>{r.backend.label()}</span></td>
                                <td><Badge text=r.status.clone() tone=status_tone(&r.status)/></td>
                                <td>{r.instances}</td>
                                <td class="row-policy">{row_policy(&r.policy, &r.other_policies)}</td>
                            </tr>
                        }
                    }).collect_view()}
                </DataTable>
            }.into_any()
        }}
        {note.map(|n| view! { <p class="muted" id="sagemaker-note">"SageMaker: "{n}</p> })}
    }
}

/// The overview's Auto-scaling cell: the invocations policy, then the others.
fn row_policy(policy: &Option<ScalingPolicy>, others: &[String]) -> String {
    match (policy, others.is_empty()) {
        (None, true) => "off: fixed instance count".into(),
        (Some(p), true) => summary(p),
        (Some(p), false) => format!("{} · also {}", summary(p), others.join(", ")),
        (None, false) => others.join(", "),
    }
}

#[component]
pub fn ScalingEndpointPage() -> impl IntoView {
    let params = use_params_map();
    let key = move || {
        let p = params.read();
        (p.get("backend").unwrap_or_default(), p.get("name").unwrap_or_default())
    };
    let version = RwSignal::new(0u32);
    let scaling = Resource::new(
        move || (key(), version.get()),
        |((backend, name), _)| async move { describe_scaling(Backend::from_slug(&backend)?, EndpointName::parse(&name)?).await },
    );
    // What the last change did, kept here: the editor below is made anew
    // when the scaling is read again after it.
    let notice = RwSignal::new(None::<&'static str>);
    let on_changed = Callback::new(move |what: &'static str| {
        notice.set(Some(what));
        version.update(|v| *v += 1);
    });
    view! {
        <PageHeader title=format!("Scaling · {}", params.read_untracked().get("name").unwrap_or_default()) refresh=version/>
        <p><A href="/scaling">"← All endpoints"</A></p>
        {move || notice.get().map(|what| view! { <p class="ok-note" id="applied">{what}</p> })}
        <Loaded resource=scaling loading="Reading the scalable targets…" ok=move |s| view! { <ScalingEditor scaling=s on_changed version/> }/>
    }
}

fn field_text(errors: &[FieldError], field: &str) -> Option<String> {
    errors.iter().find(|e| e.field == field).map(|e| e.message.clone())
}

fn parse_number<T: std::str::FromStr>(field: &'static str, label: &str, text: &str, errors: &mut Vec<FieldError>) -> Option<T> {
    match text.trim().parse::<T>() {
        Ok(v) => Some(v),
        Err(_) => {
            errors.push(FieldError { field, message: format!("{label} must be a number, not {:?}.", text.trim()) });
            None
        }
    }
}

/// The form's text fields.
#[derive(Clone, Copy)]
struct PolicyFields {
    min: RwSignal<String>,
    max: RwSignal<String>,
    target: RwSignal<String>,
    scale_in: RwSignal<String>,
    scale_out: RwSignal<String>,
    datapoint: RwSignal<String>,
    disable_scale_in: RwSignal<bool>,
    /// The hand-made policy's name the form edits (`None`: Sagedeck's).
    name: RwSignal<Option<String>>,
}

impl PolicyFields {
    fn new(p: &ScalingPolicy) -> Self {
        PolicyFields {
            min: RwSignal::new(p.min_instances.to_string()),
            max: RwSignal::new(p.max_instances.to_string()),
            target: RwSignal::new(p.target_value.to_string()),
            scale_in: RwSignal::new(p.scale_in_cooldown_s.to_string()),
            scale_out: RwSignal::new(p.scale_out_cooldown_s.to_string()),
            datapoint: RwSignal::new(p.datapoint_seconds.to_string()),
            disable_scale_in: RwSignal::new(p.disable_scale_in),
            name: RwSignal::new(p.name.clone()),
        }
    }

    fn set(&self, p: &ScalingPolicy) {
        self.min.set(p.min_instances.to_string());
        self.max.set(p.max_instances.to_string());
        self.target.set(p.target_value.to_string());
        self.scale_in.set(p.scale_in_cooldown_s.to_string());
        self.scale_out.set(p.scale_out_cooldown_s.to_string());
        self.datapoint.set(p.datapoint_seconds.to_string());
        self.disable_scale_in.set(p.disable_scale_in);
        self.name.set(p.name.clone());
    }

    /// Parses and validates every field; all problems at once.
    fn policy(&self, local: bool) -> Result<ScalingPolicy, Vec<FieldError>> {
        let mut errors = Vec::new();
        let min = parse_number::<i64>("min_instances", "Minimum", &self.min.get(), &mut errors);
        let max = parse_number::<i64>("max_instances", "Maximum", &self.max.get(), &mut errors);
        let target = parse_number::<f64>("target_value", "The target", &self.target.get(), &mut errors);
        let scale_in = parse_number::<i64>("scale_in_cooldown_s", "Scale-in cooldown", &self.scale_in.get(), &mut errors);
        let scale_out = parse_number::<i64>("scale_out_cooldown_s", "Scale-out cooldown", &self.scale_out.get(), &mut errors);
        let datapoint = parse_number::<i64>("datapoint_seconds", "The datapoint", &self.datapoint.get(), &mut errors);
        let mut non_negative = |field: &'static str, label: &str, v: Option<i64>| match v {
            Some(v) if v < 0 => {
                errors.push(FieldError { field, message: format!("{label} must be 0 or more.") });
                None
            }
            Some(v) => Some(v.min(i64::from(u32::MAX)) as u32),
            None => None,
        };
        let min = non_negative("min_instances", "Minimum", min);
        let max = non_negative("max_instances", "Maximum", max);
        let scale_in = non_negative("scale_in_cooldown_s", "Scale-in cooldown", scale_in);
        let scale_out = non_negative("scale_out_cooldown_s", "Scale-out cooldown", scale_out);
        let datapoint = non_negative("datapoint_seconds", "The datapoint", datapoint);
        let (Some(min), Some(max), Some(target), Some(scale_in), Some(scale_out), Some(datapoint)) =
            (min, max, target, scale_in, scale_out, datapoint)
        else {
            return Err(errors);
        };
        let policy = ScalingPolicy {
            min_instances: min,
            max_instances: max,
            target_value: target,
            scale_in_cooldown_s: scale_in,
            scale_out_cooldown_s: scale_out,
            disable_scale_in: self.disable_scale_in.get(),
            datapoint_seconds: datapoint,
            name: self.name.get(),
        };
        policy.validate(local)?;
        Ok(policy)
    }
}

fn input(label: &'static str, name: &'static str, value: RwSignal<String>, errors: Memo<Vec<FieldError>>) -> impl IntoView {
    view! {
        <label class="field">
            <span>{label}</span>
            <input name=name inputmode="decimal" prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))
                class:invalid=move || field_text(&errors.get(), name).is_some()/>
            {move || field_text(&errors.get(), name).map(|m| view! { <span class="field-error" data-field=name>{m}</span> })}
        </label>
    }
}

#[component]
fn ScalingEditor(scaling: EndpointScaling, on_changed: Callback<&'static str>, version: RwSignal<u32>) -> impl IntoView {
    let local = scaling.backend == Backend::Local;
    let backend = scaling.backend;
    let endpoint = StoredValue::new(scaling.endpoint.clone());
    let variants = StoredValue::new(scaling.variants.clone());
    let selected = RwSignal::new(0usize);
    let variant = move || variants.with_value(|v| v.get(selected.get()).cloned());
    let start = |v: Option<&VariantScaling>| {
        let mut p = v.and_then(|v| v.policy.clone()).unwrap_or_else(ScalingPolicy::seeds_default);
        if let Some((min, max)) = v.filter(|v| v.policy.is_none()).and_then(|v| v.registered) {
            (p.min_instances, p.max_instances) = (min, max);
        }
        p
    };
    let fields = PolicyFields::new(&start(scaling.variants.first()));
    // Picking another variant loads its policy into the form.
    Effect::new(move |prev: Option<usize>| {
        let i = selected.get();
        if prev.is_some_and(|p| p != i) {
            fields.set(&start(variants.with_value(|v| v.get(i).cloned()).as_ref()));
        }
        i
    });
    let proposed = Memo::new(move |_| fields.policy(local));
    let errors = Memo::new(move |_| proposed.get().err().unwrap_or_default());
    let put = Action::new(move |(variant, policy): &(String, ScalingPolicy)| {
        let (endpoint, variant, policy) = (EndpointName::parse(&endpoint.get_value()), VariantName::parse(variant), policy.clone());
        async move { put_scaling_policy(backend, endpoint?, variant?, policy).await }
    });
    let remove = Action::new(move |variant: &String| {
        let (endpoint, variant) = (EndpointName::parse(&endpoint.get_value()), VariantName::parse(variant));
        async move { remove_scaling_policy(backend, endpoint?, variant?).await }
    });
    Effect::new(move |_| {
        if matches!(put.value().get(), Some(Ok(_))) {
            on_changed.run("Applied. The change is in the journal below.");
        }
    });
    Effect::new(move |_| {
        if matches!(remove.value().get(), Some(Ok(_))) {
            on_changed.run("Removed. The change is in the journal below.");
        }
    });
    let measured = scaling.measured.clone();
    let price = scaling.hourly_price;
    let status = scaling.status.clone();
    let variant_rows = scaling.variants.iter().enumerate().map(|(i, v)| view! {
        <tr data-variant=v.variant.clone()>
            <td><input type="radio" name="variant" prop:checked=move || selected.get() == i on:change=move |_| selected.set(i)/></td>
            <td><code>{v.resource_id.clone()}</code></td>
            <td class="current-instances">{format!("{} × {}", v.current_instances, v.instance_type)}</td>
            <td>{v.registered.map(|(a, b)| format!("min {a} · max {b}")).unwrap_or_else(|| "not registered".into())}</td>
            <td class="policy-summary">{v.policy.as_ref().map(summary).unwrap_or_else(|| {
                if v.policies.is_empty() { "none: fixed instance count".into() } else { "none on invocations".into() }
            })}</td>
            <td class="other-policies">{
                let others: Vec<String> = v.policies.iter().filter(|p| !p.edited_here).map(|p| format!("{} ({})", p.name, p.policy_type)).collect();
                if others.is_empty() { "—".to_string() } else { others.join(", ") }
            }</td>
        </tr>
    }).collect_view();
    view! {
        <section class="card" id="variants">
            <h2>{format!("{} · {}", scaling.endpoint, backend.label())}<Badge text=status.clone() tone=status_tone(&status)/></h2>
            <DataTable headers=&["", "Variant", "Instances", "Registered", "Policy on invocations", "Other policies"]>
                {variant_rows}
            </DataTable>
            {scaling.variants.is_empty().then(|| view! { <p class="empty">"This endpoint has no variant to scale."</p> })}
            {move || variant().filter(|v| !v.policies.is_empty()).map(|v| view! { <PoliciesOnTarget policies=v.policies/> })}
        </section>
        <div class="two-columns">
            <Card title="Target-tracking policy" id="policy-editor">
                {move || variant().map(|v| view! { <p class="editing-note" id="editing-note">{editing_note(&v)}</p> })}
                <p class="muted">
                    "Scale out after 3 datapoints above the target, scale in after 15 below 90 % of it; new capacity = ⌈instances × load / target⌉ within min and max."
                    {local.then_some(" Locally a datapoint may be shorter than AWS's minute, to watch the policy work quickly.")}
                </p>
                <form class="form-grid" on:submit=move |ev| {
                    ev.prevent_default();
                    if let (Ok(policy), Some(v)) = (proposed.get_untracked(), variant()) {
                        put.dispatch((v.variant, policy));
                    }
                }>
                    {input("Minimum instances", "min_instances", fields.min, errors)}
                    {input("Maximum instances", "max_instances", fields.max, errors)}
                    {input("Target invocations per instance per minute", "target_value", fields.target, errors)}
                    {input("Scale-in cooldown (s)", "scale_in_cooldown_s", fields.scale_in, errors)}
                    {input("Scale-out cooldown (s)", "scale_out_cooldown_s", fields.scale_out, errors)}
                    {input("Datapoint (s)", "datapoint_seconds", fields.datapoint, errors)}
                    <label class="field checkbox">
                        <input type="checkbox" name="disable_scale_in" prop:checked=move || fields.disable_scale_in.get()
                            on:change=move |ev| fields.disable_scale_in.set(event_target_checked(&ev))/>
                        <span>"Never scale in (disable scale-in)"</span>
                    </label>
                    <div class="form-actions">
                        <button type="submit" class="btn btn-primary" id="apply-policy" title=crate::auth::needs_title("scaling/put")
                            disabled=move || !crate::auth::allowed("scaling/put") || proposed.get().is_err() || put.pending().get() || variant().is_none()>
                            {move || if put.pending().get() { "Applying…" } else { "Apply policy" }}
                        </button>
                        {move || variant().filter(|v| v.policy.is_some() || (v.registered.is_some() && v.policies.is_empty())).map(|v| {
                            let name = v.variant.clone();
                                let others = v.policies.iter().any(|p| !p.edited_here);
                                let policy_name = v.policy.as_ref().map(|p| p.name.clone().unwrap_or_else(|| POLICY_NAME.to_string()));
                                let question = match (policy_name, others) {
                                    (Some(n), true) => format!("Delete the policy {n}? The target stays registered for the other policies; the instance count stays where it is."),
                                    (Some(n), false) => format!("Delete the policy {n} and deregister the target? The instance count stays where it is."),
                                    (None, _) => "Deregister the target? The instance count stays where it is.".to_string(),
                                };
                                view! {
                                <ConfirmButton label="Remove auto-scaling" question=question
                                    on_confirm=Callback::new(move |_| { remove.dispatch(name.clone()); }) pending=remove.pending() danger=true needs="scaling/remove"/>
                                }
                        })}
                    </div>
                </form>
                {move || put.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
                {move || remove.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
            </Card>
            <Activities variant=Signal::derive(variant)/>
        </div>
        <Simulator backend endpoint=endpoint.get_value() current=Signal::derive(move || variant()) proposed measured price/>
        <EndpointChanges backend endpoint=endpoint.get_value() version/>
    }
}

#[component]
fn Activities(variant: Signal<Option<VariantScaling>>) -> impl IntoView {
    view! {
        <Card title="Scaling activities" id="activities">
            {move || variant.get().map(|v| {
                let note = v.activities_note.clone();
                if v.activities.is_empty() {
                    view! { <p class="muted">{note.unwrap_or_else(|| "No scaling activity yet.".into())}</p> }.into_any()
                } else {
                    view! {
                        <DataTable headers=&["When", "Change", "Status", "Cause"]>
                            {v.activities.into_iter().map(|a| view! {
                                <tr class="activity">
                                    <td>{short_time(&a.at)}</td>
                                    <td>{match (a.from, a.to) { (Some(f), Some(t)) => format!("{f} → {t}"), (_, Some(t)) => format!("→ {t}"), _ => "—".into() }}</td>
                                    <td>{a.status}</td>
                                    <td class="muted">{a.cause}</td>
                                </tr>
                            }).collect_view()}
                        </DataTable>
                        {note.map(|n| view! { <p class="muted">{n}</p> })}
                    }.into_any()
                }
            })}
        </Card>
    }
}

/// What Apply will do to this variant, in words.
fn editing_note(v: &VariantScaling) -> String {
    let others = v.policies.iter().filter(|p| !p.edited_here).count();
    let beside = if others > 0 { format!(" It runs beside {others} other polic{}: {SEVERAL_POLICIES}", if others == 1 { "y" } else { "ies" }) } else { String::new() };
    match &v.policy {
        Some(p) => match &p.name {
            Some(n) => format!("Editing the policy {n}, made outside Sagedeck: Apply changes that policy in place (same name), and Revert puts its settings back.{beside}"),
            None => format!("Editing Sagedeck's policy {POLICY_NAME}.{beside}"),
        },
        None if others > 0 => format!("No policy tracks invocations per instance here: Apply adds Sagedeck's {POLICY_NAME}.{beside}"),
        None => format!("No auto-scaling yet: Apply registers the target and adds Sagedeck's policy {POLICY_NAME}."),
    }
}

/// Every policy on the selected target, whoever made it.
#[component]
fn PoliciesOnTarget(policies: Vec<PolicyOnTarget>) -> impl IntoView {
    view! {
        <DataTable id="target-policies" headers=&["Policy", "Type", "What it does", ""]>
            {policies.into_iter().map(|p| { let key = p.name.clone(); view! {
                <tr data-policy=key class:edited=p.edited_here>
                    <td><code>{p.name}</code></td>
                    <td>{p.policy_type}</td>
                    <td>{p.summary}</td>
                    <td class="muted">{match (p.edited_here, p.made_by_sagedeck) {
                        (true, true) => "Sagedeck's · edited below",
                        (true, false) => "made by hand · edited below",
                        (false, true) => "Sagedeck's · left alone",
                        (false, false) => "made by hand · left alone (not simulated)",
                    }}</td>
                </tr>
            }}).collect_view()}
        </DataTable>
    }
}

/// The simulator's inputs as text, and the trace they produce.
#[component]
fn Simulator(
    backend: Backend,
    endpoint: String,
    current: Signal<Option<VariantScaling>>,
    proposed: Memo<Result<ScalingPolicy, Vec<FieldError>>>,
    measured: Option<super::MeasuredCapacity>,
    price: Option<f64>,
) -> impl IntoView {
    let source = RwSignal::new("spike".to_string());
    let minutes = RwSignal::new("180".to_string());
    let base = RwSignal::new("20".to_string());
    let peak = RwSignal::new("150".to_string());
    let warmup = RwSignal::new(if backend == Backend::Local { "0" } else { "5" }.to_string());
    let capacity = RwSignal::new(measured.as_ref().map(|m| format!("{:.0}", m.per_instance_per_minute)).unwrap_or_else(|| "0".into()));
    let hourly = RwSignal::new(format!("{}", price.unwrap_or(0.0)));
    let endpoint = StoredValue::new(endpoint);
    let recorded = Resource::new(
        move || source.get() == "recorded",
        move |wanted| async move {
            if wanted {
                Some(match EndpointName::parse(&endpoint.get_value()) {
                    Ok(endpoint) => get_invocation_trace(backend, endpoint, 3).await,
                    Err(e) => Err(e),
                })
            } else {
                None
            }
        },
    );
    let num = |s: RwSignal<String>| s.get().trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0);
    let trace = move || -> Result<Vec<f64>, String> {
        let n = num(minutes).map(|m| m as usize).filter(|m| (1..=super::simulate::MAX_TRACE_MINUTES).contains(m));
        let n = n.ok_or("Minutes must be 1 to 20160.")?;
        let (b, p) = (num(base).ok_or("Base must be a number ≥ 0.")?, num(peak).ok_or("Peak must be a number ≥ 0.")?);
        Ok(match source.get().as_str() {
            "steady" => Pattern::Steady { level: p }.trace(n),
            "ramp" => Pattern::Ramp { from: b, to: p }.trace(n),
            "daily" => Pattern::Daily { low: b, high: p, period_minutes: n as u32 }.trace(n),
            "recorded" => match recorded.get().flatten() {
                Some(Ok(t)) if t.per_minute.iter().any(|v| *v > 0.0) => t.per_minute,
                Some(Ok(_)) => return Err("No invocations were recorded in the last 3 hours: pick a synthetic pattern, or send traffic first.".into()),
                Some(Err(e)) => return Err(e.message().to_string()),
                None => return Err("Loading the recorded invocations…".into()),
            },
            _ => Pattern::Spike { base: b, peak: p, at: (n / 3) as u32, width: (n / 6).max(1) as u32 }.trace(n),
        })
    };
    let conditions = move || Conditions {
        start_instances: current.get().map(|v| v.current_instances).unwrap_or(1),
        warmup_minutes: num(warmup).unwrap_or(0.0) as u32,
        instance_capacity_per_minute: num(capacity).unwrap_or(0.0),
        hourly_price: num(hourly).unwrap_or(0.0),
    };
    // Without a policy the endpoint keeps its instance count.
    let current_policy = move || {
        let v = current.get();
        let n = v.as_ref().map(|v| v.current_instances).unwrap_or(1).max(1);
        v.and_then(|v| v.policy).unwrap_or(ScalingPolicy { min_instances: n, max_instances: n, ..ScalingPolicy::seeds_default() })
    };
    let run = Memo::new(move |_| -> Result<(Vec<f64>, Simulation, Option<Simulation>), String> {
        let demand = trace()?;
        let c = conditions();
        let now = simulate(&current_policy(), &c, &demand);
        let next = proposed.get().ok().map(|p| simulate(&p, &c, &demand));
        Ok((demand, now, next))
    });
    let select = move |value: &'static str, label: &'static str| view! { <option value=value selected=move || source.get() == value>{label}</option> };
    view! {
        <Card title="What if: the current policy against the one in the form" id="simulator">
            <div class="form-grid">
                <label class="field">
                    <span>"Load"</span>
                    <select id="sim-source" on:change=move |ev| source.set(event_target_value(&ev))>
                        {select("spike", "Spike")}
                        {select("steady", "Steady")}
                        {select("ramp", "Ramp")}
                        {select("daily", "Daily cycle")}
                        {select("recorded", "Recorded (last 3 hours)")}
                    </select>
                </label>
                <TextField label="Minutes" id="sim-minutes" inputmode="decimal" value=minutes/>
                <TextField label="Base invocations/min" id="sim-base" inputmode="decimal" value=base/>
                <TextField label="Peak invocations/min" id="sim-peak" inputmode="decimal" value=peak/>
                <TextField label="Warm-up (min)" id="sim-warmup" inputmode="decimal" value=warmup/>
                <TextField label="Capacity per instance (invocations/min, 0 = unlimited)" id="sim-capacity" inputmode="decimal" value=capacity/>
                <TextField label="Price per instance-hour (USD)" id="sim-price" inputmode="decimal" value=hourly/>
            </div>
            {measured.map(|m| view! { <p class="muted">{format!("Measured capacity: {:.0} invocations per instance per minute ({})", m.per_instance_per_minute, m.source)}</p> })}
            {move || match run.get() {
                Err(why) => view! { <p class="muted" id="sim-problem">{why}</p> }.into_any(),
                Ok((demand, now, next)) => view! { <SimulationView demand now next target=proposed.get().ok().map(|p| p.target_value)/> }.into_any(),
            }}
        </Card>
    }
}

fn series(name: &str, class: &'static str, points: impl Iterator<Item = (f64, f64)>) -> Series {
    Series { name: name.to_string(), class, points: points.collect() }
}

#[component]
fn SimulationView(demand: Vec<f64>, now: Simulation, next: Option<Simulation>, target: Option<f64>) -> impl IntoView {
    let instances = |s: &Simulation, name: &str, class| series(name, class, s.minutes.iter().map(|m| (f64::from(m.minute), f64::from(m.desired))));
    let load = |s: &Simulation, name: &str, class| series(name, class, s.minutes.iter().map(|m| (f64::from(m.minute), m.load_per_instance)));
    let cost = |s: &Simulation, name: &str, class| series(name, class, s.minutes.iter().map(|m| (f64::from(m.minute), m.cost_so_far)));
    let mut inst = vec![instances(&now, "current", "series-a")];
    let mut loads = vec![load(&now, "current", "series-a")];
    let mut costs = vec![cost(&now, "current", "series-a")];
    if let Some(n) = &next {
        inst.push(instances(n, "proposed", "series-b"));
        loads.push(load(n, "proposed", "series-b"));
        costs.push(cost(n, "proposed", "series-b"));
    }
    if let Some(t) = target {
        loads.push(series("target", "series-d", [(0.0, t), (demand.len().saturating_sub(1) as f64, t)].into_iter()));
    }
    let demand_series = vec![series("invocations/min", "series-c", demand.iter().enumerate().map(|(i, d)| (i as f64, *d)))];
    let row = |label: &'static str, f: &dyn Fn(&Simulation) -> String| {
        view! {
            <tr><th>{label}</th><td>{f(&now)}</td><td>{next.as_ref().map(f).unwrap_or_else(|| "—".into())}</td></tr>
        }
    };
    let summary_rows = view! {
        {row("Peak instances", &|s| s.peak_instances.to_string())}
        {row("Scaling events", &|s| s.events.len().to_string())}
        {row("Minutes above target", &|s| s.minutes_above_target.to_string())}
        {row("Throttled invocations", &|s| format!("{:.0}", s.throttled))}
        {row("Cost", &|s| format!("${:.2}", s.total_cost))}
    };
    let events = next.as_ref().map(|n| n.events.clone()).unwrap_or_default();
    view! {
        <div class="charts">
            <LineChart title="Load (invocations per minute)" series=demand_series x_label="min"/>
            <LineChart title="Instances" series=inst x_label="min"/>
            <LineChart title="Load per instance" series=loads x_label="min"/>
            <LineChart title="Cost so far (USD)" series=costs x_label="min"/>
        </div>
        <DataTable id="sim-summary" headers=&["", "Current", "Proposed"]>{summary_rows}</DataTable>
        <details>
            <summary>{format!("The proposed policy's {} scaling events", events.len())}</summary>
            <ul id="sim-events">
                {events.into_iter().take(50).map(|e| view! { <li>{format!("minute {}: {} → {} ({})", e.minute, e.decision.from, e.decision.to, e.decision.reason)}</li> }).collect_view()}
            </ul>
        </details>
    }
}

/// The journal's entries for this endpoint, with Revert buttons.
#[component]
fn EndpointChanges(backend: Backend, endpoint: String, version: RwSignal<u32>) -> impl IntoView {
    let prefix = format!("{}/{endpoint}/", backend.slug());
    let changes = Resource::new(move || version.get(), |_| recent_changes(200));
    view! {
        <Card title="Changes made here" id="scaling-changes">
            <Transition fallback=|| view! { <Loading text="Reading the journal…"/> }>
                {move || {
                    let prefix = prefix.clone();
                    Suspend::new(async move {
                        match changes.await {
                            Ok(list) => {
                                let mine = list.into_iter().filter(|c| c.action.starts_with("scaling.") && c.target.starts_with(&prefix)).collect();
                                view! { <ChangeTable changes=mine on_reverted=Callback::new(move |_| version.update(|v| *v += 1))/> }.into_any()
                            }
                            Err(error) => view! { <ErrorPanel error/> }.into_any(),
                        }
                    })
                }}
            </Transition>
        </Card>
    }
}


//! The Costs page: what runs now and what it costs per hour, day and month,
//! the month so far as a chart of daily spend, and what sits idle, with a
//! one-click stop or delete.

use super::arithmetic::{self, usd, HOURS_PER_MONTH};
use super::{costs_view, CostLine, CostReport, IdleAction, IdleResource, MonthToDate};
use crate::components::{short_time, ConfirmButton, DataTable, ErrorPanel, Loaded, PageHeader};
use crate::endpoints::{Backend, DeleteEndpoint};
use crate::names::{EndpointName, NotebookName};
use crate::notebooks::StopNotebook;
use leptos::prelude::*;
use leptos_router::components::A;

const DEFAULT_IDLE_HOURS: i64 = 24;

#[derive(Clone, Copy, PartialEq, Eq)]
enum SortKey {
    Name,
    Kind,
    Hourly,
    SoFar,
}

#[component]
pub fn CostsPage() -> impl IntoView {
    let url = leptos_router::hooks::use_query_map();
    let idle_hours = Memo::new(move |_| url.with(|m| m.get("idle").and_then(|h| h.trim().parse::<i64>().ok()).unwrap_or(DEFAULT_IDLE_HOURS)));
    let refresh = RwSignal::new(0u32);
    let stop = ServerAction::<StopNotebook>::new();
    let delete = ServerAction::<DeleteEndpoint>::new();
    let view_data = Resource::new(
        move || (idle_hours.get(), refresh.get(), stop.version().get(), delete.version().get()),
        |(hours, ..)| costs_view(hours.to_string()),
    );
    view! {
        <PageHeader title="Costs" refresh=refresh
            lede=concat!(
                "What runs now and what it costs, the month so far, and what sits idle. Estimates from on-demand prices: ",
                "the bill also has storage, data transfer and any savings plan, which Sagedeck does not see.",
            )/>
        <ActionOutcome stop delete/>
        <Loaded resource=view_data loading="Pricing what runs…" ok=move |data| view! { <CostsBody data stop delete/> }/>
    }
}

#[component]
fn ActionOutcome(stop: ServerAction<StopNotebook>, delete: ServerAction<DeleteEndpoint>) -> impl IntoView {
    move || {
        let failed = stop.value().get().and_then(Result::err).or_else(|| delete.value().get().and_then(Result::err));
        failed.map(|error| view! { <ErrorPanel error/> })
    }
}

#[component]
fn CostsBody(data: CostReport, stop: ServerAction<StopNotebook>, delete: ServerAction<DeleteEndpoint>) -> impl IntoView {
    let totals = arithmetic::totals(&data.lines);
    let range = (totals.hourly_low - totals.hourly_high).abs() > 1e-9;
    let where_ = match &data.region {
        Some(r) => format!("AWS region {r}"),
        None => "no AWS account (local work only)".to_string(),
    };
    view! {
        <p class="summary muted" id="price-source">{format!("{where_} · prices: {} · computed {}", data.price_source, short_time(&data.computed_at))}</p>
        {(!data.notes.is_empty()).then(|| view! {
            <ul class="notes" id="cost-notes">{data.notes.iter().map(|n| view! { <li>{n.clone()}</li> }).collect_view()}</ul>
        })}
        <div class="cards cost-cards">
            <div class="card" id="cost-now">
                <h2>"Running now"</h2>
                <p class="big-number" data-hourly=format!("{:.6}", totals.hourly)>{format!("{}/hour", usd(totals.hourly))}</p>
                <p class="muted">{format!("{} a day · {} a month at this rate", usd(totals.daily()), usd(totals.monthly()))}</p>
                {range.then(|| view! {
                    <p class="muted">{format!(
                        "auto-scaling allows {} to {} an hour ({} to {} a month)",
                        usd(totals.hourly_low), usd(totals.hourly_high),
                        usd(totals.hourly_low * HOURS_PER_MONTH), usd(totals.hourly_high * HOURS_PER_MONTH),
                    )}</p>
                })}
                {(totals.unpriced > 0).then(|| view! {
                    <p class="field-error">{format!("{} running resource(s) have no price and are left out", totals.unpriced)}</p>
                })}
            </div>
            <MonthCard month=data.month.clone()/>
        </div>
        <DailyChart days=data.month.daily.clone()/>
        <h2>"What runs"</h2>
        <CostTable lines=data.lines.clone()/>
        <IdleSection hours=data.idle_hours idle=data.idle.clone() stop delete/>
        <crate::schedules::AllSchedules/>
    }
}

#[component]
fn MonthCard(month: MonthToDate) -> impl IntoView {
    view! {
        <div class="card" id="cost-month">
            <h2>"This month so far"</h2>
            <p class="big-number" data-usd=format!("{:.6}", month.usd)>{usd(month.usd)}</p>
            <ul class="facts-list">
                {month.parts.iter().map(|(what, amount)| view! { <li>{format!("{what}: {}", usd(*amount))}</li> }).collect_view()}
            </ul>
            {(month.local_equivalent_usd > 0.0).then(|| view! {
                <p class="muted" id="local-equivalent">{format!(
                    "Local work this month would have cost {} on SageMaker (not billed: it ran here).",
                    usd(month.local_equivalent_usd)
                )}</p>
            })}
            {(!month.gaps.is_empty()).then(|| view! {
                <details><summary>{format!("{} thing(s) not counted", month.gaps.len())}</summary>
                    <ul>{month.gaps.iter().map(|g| view! { <li>{g.clone()}</li> }).collect_view()}</ul>
                </details>
            })}
        </div>
    }
}

/// Daily spend this month as bars (SVG, no script needed to read it).
#[component]
fn DailyChart(days: Vec<(String, f64)>) -> impl IntoView {
    let (width, height, pad) = (640.0_f64, 140.0_f64, 18.0_f64);
    let max = days.iter().map(|d| d.1).fold(0.0_f64, f64::max);
    if days.is_empty() || max <= 0.0 {
        return view! { <p class="muted chart-empty" id="daily-spend">"No spend recorded this month yet."</p> }.into_any();
    }
    // A month's worth of slots, so a bar keeps its width as the month goes on.
    let slot = width / days.len().max(31) as f64;
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, (day, amount))| {
            let h = (amount / max) * (height - pad * 2.0);
            let x = i as f64 * slot + slot * 0.15;
            let y = height - pad - h;
            let label = format!("{day}: {}", usd(*amount));
            let day_of_month = day.get(8..).unwrap_or_default().trim_start_matches('0').to_string();
            view! {
                <rect x=format!("{x:.1}") y=format!("{y:.1}") width=format!("{:.1}", slot * 0.7) height=format!("{h:.1}") class="spend-bar">
                    <title>{label}</title>
                </rect>
                <text x=format!("{:.1}", x + slot * 0.35) y=format!("{}", height - 4.0) class="axis" text-anchor="middle">{day_of_month}</text>
            }
        })
        .collect_view();
    let first = days.first().map(|d| d.0.clone()).unwrap_or_default();
    let last = days.last().map(|d| d.0.clone()).unwrap_or_default();
    view! {
        <figure class="chart" id="daily-spend">
            <figcaption>{format!("Spend per day (UTC), {first} to {last}, highest {}", usd(max))}</figcaption>
            <svg viewBox=format!("0 0 {width} {height}") role="img" aria-label="spend per day this month">
                {bars}
            </svg>
        </figure>
    }
    .into_any()
}

#[component]
fn CostTable(lines: Vec<CostLine>) -> impl IntoView {
    if lines.is_empty() {
        return view! { <p class="muted" id="cost-lines">"Nothing billable is running: no notebook, endpoint or training job."</p> }.into_any();
    }
    let sort = RwSignal::new((SortKey::Hourly, true));
    let lines = StoredValue::new(lines);
    let sorted = move || {
        let (key, desc) = sort.get();
        let mut rows = lines.get_value();
        let hourly = |l: &CostLine| arithmetic::line_hourly(l).map(|h| h.0).unwrap_or(-1.0);
        rows.sort_by(|a, b| {
            let order = match key {
                SortKey::Name => a.name.cmp(&b.name),
                SortKey::Kind => a.kind.label().cmp(b.kind.label()).then(a.name.cmp(&b.name)),
                SortKey::Hourly => hourly(a).total_cmp(&hourly(b)),
                SortKey::SoFar => a.so_far_usd.unwrap_or(-1.0).total_cmp(&b.so_far_usd.unwrap_or(-1.0)),
            };
            if desc { order.reverse() } else { order }
        });
        rows
    };
    let header = move |label: &'static str, key: SortKey| {
        let mark = move || match sort.get() {
            (k, true) if k == key => " ▼",
            (k, false) if k == key => " ▲",
            _ => "",
        };
        view! {
            <th aria-sort=move || match sort.get() { (k, true) if k == key => "descending", (k, false) if k == key => "ascending", _ => "none" }>
                <button class="sort" data-sort=label on:click=move |_| sort.update(|s| *s = if s.0 == key { (key, !s.1) } else { (key, true) })>
                    {label}{mark}
                </button>
            </th>
        }
    };
    view! {
        <table class="table" id="cost-lines">
            <thead>
                <tr>
                    {header("Resource", SortKey::Name)}
                    {header("Kind", SortKey::Kind)}
                    <th>"Instances"</th>
                    {header("Per hour", SortKey::Hourly)}
                    <th>"Per month"</th>
                    {header("So far", SortKey::SoFar)}
                    <th>"Price"</th>
                </tr>
            </thead>
            <tbody>
                <For each=sorted key=|l| (l.kind.label(), l.name.clone()) let:line>
                    <CostRow line/>
                </For>
            </tbody>
        </table>
    }
    .into_any()
}

#[component]
fn CostRow(line: CostLine) -> impl IntoView {
    let hourly = arithmetic::line_hourly(&line);
    let per_hour = match hourly {
        Some((now, low, high)) if (low - high).abs() > 1e-9 => format!("{} ({} – {})", usd(now), usd(low), usd(high)),
        Some((now, ..)) => usd(now),
        None => "no price".into(),
    };
    let per_month = hourly.map(|h| usd(h.0 * HOURS_PER_MONTH)).unwrap_or_else(|| "—".into());
    let instances = match line.scaling {
        Some((min, max)) => format!("{} × {} (scales {min}–{max})", line.instances, line.instance_type),
        None => format!("{} × {}", line.instances, line.instance_type),
    };
    let so_far = line.so_far_usd.map(usd).unwrap_or_else(|| "—".into());
    let local = !line.billing_now;
    let (name, href) = (line.name.clone(), line.href.clone());
    view! {
        <tr data-name=line.name.clone() data-kind=line.kind.label() class:row-muted=local>
            <td>
                <A href=href>{name}</A>
                {line.spot.then(|| view! { " " <span class="badge badge-ok">"spot"</span> })}
                <div class="muted small">{line.detail.clone()}</div>
            </td>
            <td>{line.kind.label()}{local.then_some(" (not billed)")}</td>
            <td>{instances}</td>
            <td class="num" data-hourly=line.hourly_usd.map(|p| format!("{:.6}", p * line.instances as f64)).unwrap_or_default()>{per_hour}</td>
            <td class="num">{per_month}</td>
            <td class="num">{so_far}</td>
            <td class="muted small">{line.price_source.clone()}</td>
        </tr>
    }
}

#[component]
fn IdleSection(hours: u32, idle: Vec<IdleResource>, stop: ServerAction<StopNotebook>, delete: ServerAction<DeleteEndpoint>) -> impl IntoView {
    let idle_cost: f64 = idle.iter().filter_map(|i| i.hourly_usd).sum();
    view! {
        <h2 id="idle">"Idle"</h2>
        // A plain GET form: the window is in the URL, and works before hydration.
        <form class="filters" method="get" action="/costs">
            <label class="field inline">
                <span>"No use for"</span>
                <input name="idle" type="number" min="1" max=super::MAX_IDLE_HOURS value=hours.to_string()/>
                <span>"hours"</span>
            </label>
            <button class="btn" type="submit">"Look again"</button>
        </form>
        {if idle.is_empty() {
            view! { <p class="muted" id="idle-list">{format!("Nothing has been idle for {hours} hours.")}</p> }.into_any()
        } else {
            view! {
                <p class="muted">{format!("{} idle resource(s) cost {} an hour ({} a month) doing nothing.", idle.len(), usd(idle_cost), usd(idle_cost * HOURS_PER_MONTH))}</p>
                <DataTable id="idle-list" headers=&["Resource", "Why it looks idle", "Per hour", ""]>
                    {idle.into_iter().map(|i| view! { <IdleRow idle=i stop delete/> }).collect_view()}
                </DataTable>
            }.into_any()
        }}
    }
}

#[component]
fn IdleRow(idle: IdleResource, stop: ServerAction<StopNotebook>, delete: ServerAction<DeleteEndpoint>) -> impl IntoView {
    let name = idle.name.clone();
    // The scan read these names from SageMaker and the local registry, both
    // of which keep to the naming rules: they parse.
    let action = match idle.action {
        IdleAction::StopNotebook => view! {
            <ConfirmButton
                label="Stop"
                question=format!("Stop notebook {name}? Its volume and files are kept.")
                pending=stop.pending()
                needs="notebooks/stop"
                on_confirm=Callback::new(move |_| { if let Ok(name) = NotebookName::parse(&name) { stop.dispatch(StopNotebook { name }); } })
            />
        }
        .into_any(),
        IdleAction::DeleteSageMakerEndpoint | IdleAction::DeleteLocalEndpoint => {
            let backend = if idle.action == IdleAction::DeleteLocalEndpoint { Backend::Local } else { Backend::SageMaker };
            let question = if backend == Backend::Local {
                format!("Delete local endpoint {name}? Its model stays with its training job.")
            } else {
                format!("Delete endpoint {name}? Its configuration and model are kept, so the journal can recreate it.")
            };
            view! {
                <ConfirmButton
                    label="Delete"
                    question
                    danger=true
                    pending=delete.pending()
                    needs="endpoints/delete"
                    on_confirm=Callback::new(move |_| { if let Ok(name) = EndpointName::parse(&name) { delete.dispatch(DeleteEndpoint { backend, name, with_config: false }); } })
                />
            }
            .into_any()
        }
    };
    let (label, href) = (idle.name.clone(), idle.href.clone());
    view! {
        <tr data-name=idle.name.clone()>
            <td><A href=href>{label}</A><div class="muted small">{idle.kind.label()}</div></td>
            <td>{idle.evidence.clone()}</td>
            <td class="num">{idle.hourly_usd.map(usd).unwrap_or_else(|| "no price".into())}</td>
            <td>{action}</td>
        </tr>
    }
}

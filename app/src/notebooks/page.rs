use super::lifecycle::{can_start, can_stop, NotebookStatus};
use super::pricing::{format_hourly, format_monthly};
use super::{
    describe_notebook, list_notebooks, NotebookChange, NotebookDetail, NotebookSummary,
    StartNotebook, StopNotebook,
};
use crate::components::{or_dash, short_time, Badge, ConfirmButton, ErrorPanel, Loading, PageHeader};
use crate::ApiError;
use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_params_map};

/// Start and stop actions shared by the list and the detail page.
#[derive(Clone, Copy)]
struct NotebookActions {
    start: ServerAction<StartNotebook>,
    stop: ServerAction<StopNotebook>,
}

impl NotebookActions {
    fn new() -> Self {
        Self { start: ServerAction::new(), stop: ServerAction::new() }
    }

    /// Changes whenever either action finished, so resources refetch.
    fn version(&self) -> usize {
        self.start.version().get() + self.stop.version().get()
    }
}

#[component]
pub fn NotebooksPage() -> impl IntoView {
    let actions = NotebookActions::new();
    let refresh = RwSignal::new(0u32);
    let notebooks = Resource::new(move || (actions.version(), refresh.get()), |_| list_notebooks());
    // SageMaker takes minutes to start or stop a notebook. While any is
    // between states, look again every 10 s so the page arrives at the final
    // status by itself. (Effects run only in the browser.)
    Effect::new(move |_| {
        let changing = notebooks.get().and_then(Result::ok).is_some_and(|list| {
            list.iter().any(|n| NotebookStatus::parse(&n.status).is_transitional())
        });
        if changing {
            // One pending look at a time: a manual Refresh reruns this effect,
            // which cancels the timer of the previous run.
            if let Ok(timer) =
                set_timeout_with_handle(move || refresh.update(|n| *n += 1), std::time::Duration::from_secs(10))
            {
                on_cleanup(move || timer.clear());
            }
        }
    });

    view! {
        <PageHeader title="Notebooks">
            <button class="btn" on:click=move |_| refresh.update(|n| *n += 1)>"Refresh"</button>
        </PageHeader>
        <p class="lede">"SageMaker notebook instances in this account and region. A running notebook bills by the hour until it is stopped."</p>
        <ActionOutcome actions/>
        <Transition fallback=|| view! { <Loading text="Listing notebook instances…"/> }>
            {move || Suspend::new(async move {
                match notebooks.await {
                    Ok(list) => view! { <NotebookTable list actions/> }.into_any(),
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn NotebookTable(list: Vec<NotebookSummary>, actions: NotebookActions) -> impl IntoView {
    if list.is_empty() {
        return view! { <p class="empty">"No notebook instances in this account and region."</p> }.into_any();
    }
    let running_cost: f64 = list
        .iter()
        .filter(|n| NotebookStatus::parse(&n.status).is_billing())
        .filter_map(|n| n.hourly_usd)
        .sum();
    let count = list.len();
    view! {
        <p class="summary">
            {format!("{count} notebook instance{}; running ones cost about ", if count == 1 { "" } else { "s" })}
            <strong>{format_hourly(Some(running_cost))}</strong>
            " (estimate)."
        </p>
        <table class="table" id="notebooks">
            <thead>
                <tr><th>"Name"</th><th>"Status"</th><th>"Instance type"</th><th>"Est. cost"</th><th>"Created"</th><th>"Actions"</th></tr>
            </thead>
            <tbody>
                {list.into_iter().map(|nb| view! { <NotebookRow nb actions/> }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[component]
fn NotebookRow(nb: NotebookSummary, actions: NotebookActions) -> impl IntoView {
    let status = NotebookStatus::parse(&nb.status);
    let tone = status.tone();
    let href = format!("/notebooks/{}", nb.name);
    let created = nb.created_at.as_deref().map(short_time).unwrap_or_else(|| "—".into());
    let name = nb.name;
    let row_key = name.clone();
    let link_text = name.clone();
    view! {
        <tr data-notebook=row_key>
            <td><A href=href>{link_text}</A></td>
            <td class="status"><Badge text=nb.status tone/></td>
            <td>{nb.instance_type}</td>
            // What it costs now: a stopped notebook bills storage only.
            <td class="hourly">{if status.is_billing() { format_hourly(nb.hourly_usd) } else { "— (stopped)".to_string() }}</td>
            <td>{created}</td>
            <td class="actions"><StartStop name status actions/></td>
        </tr>
    }
}

/// Start or Stop, whichever the status allows, each behind a confirmation.
#[component]
fn StartStop(name: String, status: NotebookStatus, actions: NotebookActions) -> impl IntoView {
    let pending = Signal::derive(move || actions.start.pending().get() || actions.stop.pending().get());
    if can_stop(&status).is_ok() {
        let n = name.clone();
        view! {
            <ConfirmButton
                label="Stop"
                question=format!("Stop {name}? Its kernels end; its storage volume is kept.")
                on_confirm=Callback::new(move |_| { actions.stop.dispatch(StopNotebook { name: n.clone() }); })
                needs="notebooks/stop"
                pending
                danger=true
            />
        }
        .into_any()
    } else if can_start(&status).is_ok() {
        let n = name.clone();
        view! {
            <ConfirmButton
                label="Start"
                question=format!("Start {name}? It bills by the hour while it runs.")
                on_confirm=Callback::new(move |_| { actions.start.dispatch(StartNotebook { name: n.clone() }); })
                needs="notebooks/start"
                pending
            />
        }
        .into_any()
    } else {
        view! { <span class="muted">"—"</span> }.into_any()
    }
}

/// The result of the last start or stop: the new status, or the error in words.
#[component]
fn ActionOutcome(actions: NotebookActions) -> impl IntoView {
    let show = move |result: Option<Result<NotebookChange, ApiError>>| match result {
        None => ().into_any(),
        Some(Ok(change)) => view! {
            <div class="notice" role="status">
                {format!(
                    "{} {}: {} → {}",
                    change.action, change.name, change.status_before, change.after.summary.status
                )}
            </div>
        }
        .into_any(),
        Some(Err(error)) => view! { <ErrorPanel error/> }.into_any(),
    };
    view! {
        <div class="outcomes" aria-live="polite">
            {move || show(actions.start.value().get())}
            {move || show(actions.stop.value().get())}
        </div>
    }
}

#[component]
pub fn NotebookDetailPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.read().get("name").unwrap_or_default();
    let actions = NotebookActions::new();
    let detail = Resource::new(move || (name(), actions.version()), |(name, _)| describe_notebook(name));

    view! {
        <PageHeader title="Notebook">
            <A href="/notebooks" attr:class="btn">"← All notebooks"</A>
        </PageHeader>
        <ActionOutcome actions/>
        <Transition fallback=|| view! { <Loading/> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok(d) => view! { <NotebookDetailView d actions/> }.into_any(),
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn NotebookDetailView(d: NotebookDetail, actions: NotebookActions) -> impl IntoView {
    let s = d.summary;
    let status = NotebookStatus::parse(&s.status);
    let billing = status.is_billing();
    view! {
        <section class="card detail" id="notebook-detail">
            <header>
                <h2>{s.name.clone()}</h2>
                <Badge text=s.status.clone() tone=status.tone()/>
                <span class="spacer"></span>
                <StartStop name=s.name.clone() status actions/>
            </header>
            {d.failure_reason.map(|r| view! { <ErrorPanel error=ApiError::Upstream(format!("Failure reason: {r}"))/> })}
            <dl class="grid">
                <dt>"Instance type"</dt><dd>{s.instance_type.clone()}</dd>
                <dt>"Estimated cost"</dt>
                <dd>
                    {if billing {
                        format!("{} · {} if left running · billing now", format_hourly(s.hourly_usd), format_monthly(s.hourly_usd))
                    } else {
                        format!("not billing compute while stopped (its volume is still billed); {} when running", format_hourly(s.hourly_usd))
                    }}
                </dd>
                <dt>"ARN"</dt><dd><code>{or_dash(d.arn)}</code></dd>
                <dt>"Execution role"</dt><dd><code>{or_dash(d.role_arn)}</code></dd>
                <dt>"Volume"</dt><dd>{d.volume_size_gb.map(|g| format!("{g} GB")).unwrap_or_else(|| "—".into())}</dd>
                <dt>"Platform"</dt><dd>{or_dash(d.platform_identifier)}</dd>
                <dt>"URL"</dt><dd>{or_dash(s.url)}</dd>
                <dt>"Subnet"</dt><dd>{or_dash(d.subnet_id)}</dd>
                <dt>"Security groups"</dt><dd>{if d.security_groups.is_empty() { "—".to_string() } else { d.security_groups.join(", ") }}</dd>
                <dt>"Direct internet access"</dt><dd>{or_dash(d.direct_internet_access)}</dd>
                <dt>"Root access"</dt><dd>{or_dash(d.root_access)}</dd>
                <dt>"Lifecycle configuration"</dt><dd>{or_dash(d.lifecycle_config)}</dd>
                <dt>"Code repository"</dt><dd>{or_dash(d.default_code_repository)}</dd>
                <dt>"KMS key"</dt><dd>{or_dash(d.kms_key_id)}</dd>
                <dt>"Created"</dt><dd>{s.created_at.as_deref().map(short_time).unwrap_or_else(|| "—".into())}</dd>
                <dt>"Last modified"</dt><dd>{s.last_modified_at.as_deref().map(short_time).unwrap_or_else(|| "—".into())}</dd>
            </dl>
        </section>
    }
}

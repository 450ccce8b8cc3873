use super::create::{NotebookSpec, IDLE_MINUTES};
use super::lifecycle::{can_delete, can_open, can_start, can_stop, NotebookStatus};
use super::pricing::{format_hourly, format_monthly};
use super::{
    create_notebook, describe_notebook, list_notebooks, notebook_roles, open_notebook, DeleteNotebook, NotebookChange, NotebookDetail,
    NotebookSummary, StartNotebook, StopNotebook,
};
use crate::components::{dispatch_or_show, or_dash, short_time, Badge, Card, ConfirmButton, ErrorPanel, Loaded, PageHeader, TextField};
use crate::names::NotebookName;
use crate::ApiError;
use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_params_map};

/// Start, stop and delete, shared by the list and the detail page.
#[derive(Clone, Copy)]
struct NotebookActions {
    start: ServerAction<StartNotebook>,
    stop: ServerAction<StopNotebook>,
    delete: ServerAction<DeleteNotebook>,
}

impl NotebookActions {
    fn new() -> Self {
        Self { start: ServerAction::new(), stop: ServerAction::new(), delete: ServerAction::new() }
    }

    /// Changes whenever an action finished, so resources refetch.
    fn version(&self) -> usize {
        self.start.version().get() + self.stop.version().get() + self.delete.version().get()
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
        <PageHeader title="Notebooks" refresh=refresh lede="SageMaker notebook instances in this account and region. A running notebook bills by the hour until it is stopped."/>
        <ActionOutcome actions/>
        <Loaded resource=notebooks loading="Listing notebook instances…" ok=move |list| view! { <NotebookTable list actions/> }/>
        <NewNotebookForm on_created=Callback::new(move |_| refresh.update(|n| *n += 1))/>
    }
}

/// Create a notebook instance: type with its price, a role SageMaker may
/// assume, volume, and a lifecycle configuration or Sagedeck's idle auto-stop.
#[component]
fn NewNotebookForm(on_created: Callback<()>) -> impl IntoView {
    let roles = Resource::new(|| (), |_| notebook_roles());
    let example = NotebookSpec::example(String::new());
    let name = RwSignal::new(String::new());
    let instance_type = RwSignal::new(example.instance_type.clone());
    let role = RwSignal::new(String::new());
    let volume = RwSignal::new(example.volume_size_gb.to_string());
    let lifecycle = RwSignal::new(String::new());
    let idle_stop = RwSignal::new(true);
    let idle_minutes = RwSignal::new("60".to_string());
    let problem = RwSignal::new(None::<ApiError>);
    let create = Action::new(|spec: &NotebookSpec| create_notebook(spec.clone()));
    Effect::new(move |_| match create.value().get() {
        Some(Ok(_)) => {
            problem.set(None);
            name.set(String::new());
            on_created.run(());
        }
        Some(Err(e)) => problem.set(Some(e)),
        None => {}
    });
    let submit = move |_| {
        let spec = NotebookSpec {
            name: name.get_untracked().trim().to_string(),
            instance_type: instance_type.get_untracked(),
            role_arn: role.get_untracked(),
            volume_size_gb: volume.get_untracked().trim().parse().unwrap_or(0),
            lifecycle_config: lifecycle.get_untracked().trim().to_string(),
            idle_stop_minutes: idle_stop.get_untracked().then(|| idle_minutes.get_untracked().trim().parse().unwrap_or(0)),
        };
        dispatch_or_show(create, problem, spec.validate().map(|()| spec));
    };
    view! {
        <Card title="New notebook instance" id="new-notebook">
            <div class="form-grid">
                <TextField label="Name" name="name" value=name/>
                <label class="field">
                    <span>"Instance type"</span>
                    <select name="instance_type" on:change=move |ev| instance_type.set(event_target_value(&ev))>
                        {super::pricing::instance_types().map(|t| {
                            let label = format!("{t} · {} · {}", format_hourly(super::pricing::hourly_usd(t)), format_monthly(super::pricing::hourly_usd(t)));
                            view! { <option value=t selected=move || instance_type.get() == t>{label}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <label class="field">
                    <span>"Role"</span>
                    <Suspense fallback=|| view! { <select disabled=true><option>"Loading…"</option></select> }>
                        {move || Suspend::new(async move {
                            let list = match roles.await {
                                Ok(list) => list,
                                // AWS not configured or IAM refused: say so rather than "no role".
                                Err(error) => return view! { <span class="muted" id="roles-error">{error.message().to_string()}</span> }.into_any(),
                            };
                            if role.get_untracked().is_empty() {
                                if let Some(first) = list.first() {
                                    role.set(first.clone());
                                }
                            }
                            let empty = list.is_empty();
                            view! {
                                <select name="role" on:change=move |ev| role.set(event_target_value(&ev))>
                                    {list.into_iter().map(|r| { let selected = role.get_untracked() == r; view! { <option value=r.clone() selected=selected>{r.clone()}</option> } }).collect_view()}
                                </select>
                                {empty.then(|| view! { <span class="muted">"No role here trusts sagemaker.amazonaws.com; create one in IAM first."</span> })}
                            }
                            .into_any()
                        })}
                    </Suspense>
                </label>
                <TextField label="Volume (GB)" name="volume" value=volume/>
                <TextField label="Lifecycle configuration (optional, by name)" name="lifecycle" value=lifecycle/>
                <label class="field checkbox">
                    <input type="checkbox" name="idle_stop" prop:checked=move || idle_stop.get() on:change=move |ev| idle_stop.set(event_target_checked(&ev))/>
                    <span>{format!("Stop it when idle (Sagedeck's lifecycle script; {}–{} minutes without Jupyter activity; its role needs sagemaker:StopNotebookInstance)", IDLE_MINUTES.start(), IDLE_MINUTES.end())}</span>
                </label>
                <TextField label="Idle minutes" name="idle_minutes" value=idle_minutes/>
            </div>
            {move || problem.get().map(|error| view! { <ErrorPanel error/> })}
            <button class="btn btn-primary" id="create-notebook" disabled=move || create.pending().get() || !crate::auth::allowed("notebooks/create") on:click=submit>
                {move || if create.pending().get() { "Creating…" } else { "Create notebook instance" }}
            </button>
        </Card>
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
            <td class="actions"><NotebookButtons name status actions/></td>
        </tr>
    }
}

/// Open JupyterLab when it runs, Delete when it is stopped, then Start or
/// Stop, whichever the status allows; changes behind a confirmation.
#[component]
fn NotebookButtons(name: String, status: NotebookStatus, actions: NotebookActions) -> impl IntoView {
    // SageMaker keeps notebook names to its rule; one that is not gets no buttons.
    let Ok(name) = NotebookName::parse(&name) else {
        return view! { <span class="muted">"—"</span> }.into_any();
    };
    let open = can_open(&status).is_ok().then(|| view! { <OpenJupyterLab name=name.clone()/> });
    let delete = can_delete(&status).is_ok().then(|| {
        let n = name.clone();
        view! {
            <ConfirmButton
                label="Delete"
                question=format!("Delete {name} and its storage volume? Files not saved elsewhere are lost.")
                on_confirm=Callback::new(move |_| { actions.delete.dispatch(DeleteNotebook { name: n.clone() }); })
                needs="notebooks/delete"
                pending=actions.delete.pending()
                danger=true
            />
        }
    });
    view! { {open}{delete}<StartOrStop name status actions/> }.into_any()
}

/// Asks for a presigned URL and opens JupyterLab in a new tab.
#[component]
fn OpenJupyterLab(name: NotebookName) -> impl IntoView {
    let open = Action::new(|name: &NotebookName| open_notebook(name.clone()));
    Effect::new(move |_| {
        if let Some(Ok(url)) = open.value().get() {
            #[cfg(feature = "hydrate")]
            {
                if let Some(window) = web_sys::window() {
                    let _ = window.open_with_url_and_target(&url, "_blank");
                }
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = url;
        }
    });
    let n = name.clone();
    view! {
        <button class="btn" data-open-notebook=name.to_string() disabled=move || open.pending().get() || !crate::auth::allowed("notebooks/open")
            on:click=move |_| { open.dispatch(n.clone()); }>
            {move || if open.pending().get() { "Opening…" } else { "Open JupyterLab" }}
        </button>
        {move || open.value().get().map(|r| match r {
            Ok(url) => view! { <a class="muted" href=url.clone() target="_blank" rel="noopener" data-presigned=url>"JupyterLab (if no tab opened)"</a> }.into_any(),
            Err(error) => view! { <ErrorPanel error/> }.into_any(),
        })}
    }
}

#[component]
fn StartOrStop(name: NotebookName, status: NotebookStatus, actions: NotebookActions) -> impl IntoView {
    let pending = Signal::derive(move || actions.start.pending().get() || actions.stop.pending().get());
    // Stopping is the risky one: the button says so.
    let stopping = if can_stop(&status).is_ok() {
        true
    } else if can_start(&status).is_ok() {
        false
    } else {
        return view! { <span class="muted">"—"</span> }.into_any();
    };
    let (label, question, needs) = if stopping {
        ("Stop", format!("Stop {name}? Its kernels end; its storage volume is kept."), "notebooks/stop")
    } else {
        ("Start", format!("Start {name}? It bills by the hour while it runs."), "notebooks/start")
    };
    let on_confirm = Callback::new(move |_| {
        let name = name.clone();
        if stopping {
            actions.stop.dispatch(StopNotebook { name });
        } else {
            actions.start.dispatch(StartNotebook { name });
        }
    });
    view! { <ConfirmButton label question on_confirm needs pending danger=stopping/> }.into_any()
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
            {move || actions.delete.value().get().map(|r| match r {
                Ok(()) => view! { <div class="notice" role="status">"Deleting the notebook instance and its volume."</div> }.into_any(),
                Err(error) => view! { <ErrorPanel error/> }.into_any(),
            })}
        </div>
    }
}

#[component]
pub fn NotebookDetailPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.read().get("name").unwrap_or_default();
    let actions = NotebookActions::new();
    let detail = Resource::new(move || (NotebookName::parse(&name()), actions.version()), |(name, _)| async move { describe_notebook(name?).await });

    view! {
        <PageHeader title="Notebook">
            <A href="/notebooks" attr:class="btn">"← All notebooks"</A>
        </PageHeader>
        <ActionOutcome actions/>
        <Loaded resource=detail ok=move |d| view! { <NotebookDetailView d actions/> }/>
        <RoleScore detail/>
        {move || view! { <crate::schedules::SchedulePanel scheduled=crate::schedules::Scheduled::Notebook(name())/> }}
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
                <NotebookButtons name=s.name.clone() status actions/>
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
                <dt>"Execution role"</dt><dd><code>{or_dash(d.role_arn.clone())}</code></dd>
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

/// The execution role's IAM review score, with a link to its review: its
/// own Transition beside the details (the account review takes longer).
#[component]
fn RoleScore(detail: Resource<Result<NotebookDetail, ApiError>>) -> impl IntoView {
    let review = Resource::new(|| (), |_| crate::iam::get_account_review(90));
    view! {
        <Transition fallback=|| view! { <p class="muted small">"Reading the IAM review of its role…"</p> }>
            {move || Suspend::new(async move {
                let arn = detail.await.ok().and_then(|d| d.role_arn);
                let name = arn.as_deref().and_then(|a| a.rsplit('/').next()).unwrap_or_default().to_string();
                let found = match (&arn, review.await) {
                    (Some(arn), Ok(r)) => r.roles.into_iter().find(|role| &role.report.arn == arn || role.report.name == name),
                    _ => None,
                };
                match (arn, found) {
                    (None, _) => ().into_any(),
                    (Some(_), Some(role)) => view! {
                        <p class="role-score" id="role-score" data-score=role.report.score>
                            "Execution role: "
                            <A href=format!("/iam?role={name}")>{format!("IAM review: risk {} of 99", role.report.score)}</A>
                            <span class="muted">{format!(" · {}", role.report.reach)}</span>
                        </p>
                    }.into_any(),
                    (Some(_), None) => view! { <p class="muted small" id="role-score">"Execution role: not in the account's IAM review"</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

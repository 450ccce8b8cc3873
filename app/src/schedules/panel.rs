//! The schedules of one resource (on a notebook's and an endpoint's page),
//! with a form to add one; and the table of every schedule (Costs page).

use super::{create_schedule, list_schedules, Recurrence, Schedule, ScheduleAction, ScheduleSpec};
use crate::components::{dispatch_or_show, short_time, ConfirmButton, ErrorPanel, TextField};
use crate::endpoints::Backend;
use crate::ApiError;
use leptos::prelude::*;

/// What the panel schedules: a notebook, or an endpoint of a backend.
#[derive(Clone, Debug, PartialEq)]
pub enum Scheduled {
    Notebook(String),
    Endpoint(Backend, String),
}

impl Scheduled {
    fn resource(&self) -> String {
        match self {
            Scheduled::Notebook(name) => format!("notebook/{name}"),
            Scheduled::Endpoint(backend, name) => format!("{}/{name}", backend.slug()),
        }
    }

    /// The actions the form offers: (value, label).
    fn choices(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            Scheduled::Notebook(_) => &[("stop", "Stop the notebook"), ("start", "Start the notebook")],
            Scheduled::Endpoint(..) => &[("delete-idle", "Delete it if idle for… (config kept)"), ("min", "Set the auto-scaling minimum to…")],
        }
    }

    fn action(&self, choice: &str, number: &str) -> Result<ScheduleAction, ApiError> {
        let n = |field: &str| {
            number.trim().parse::<i64>().map_err(|_| ApiError::Invalid(format!("{field} must be a whole number, not {number:?}")))
        };
        Ok(match (self, choice) {
            (Scheduled::Notebook(name), "start") => ScheduleAction::StartNotebook { name: name.clone() },
            (Scheduled::Notebook(name), _) => ScheduleAction::StopNotebook { name: name.clone() },
            (Scheduled::Endpoint(backend, name), "min") => {
                ScheduleAction::SetMinInstances { backend: *backend, name: name.clone(), min_instances: n("min_instances")? }
            }
            (Scheduled::Endpoint(backend, name), _) => {
                ScheduleAction::DeleteEndpointIfIdle { backend: *backend, name: name.clone(), idle_hours: n("idle_hours")? }
            }
        })
    }
}

/// The browser's own time zone (the form's default), UTC on the server.
fn local_zone() -> String {
    #[cfg(feature = "hydrate")]
    {
        let options = js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new()).resolved_options();
        if let Some(zone) = js_sys::Reflect::get(&options, &"timeZone".into()).ok().and_then(|z| z.as_string()) {
            return zone;
        }
    }
    "UTC".to_string()
}

#[component]
pub fn SchedulePanel(scheduled: Scheduled) -> impl IntoView {
    let resource = scheduled.resource();
    let created = RwSignal::new(0u32);
    let delete = ServerAction::<super::DeleteSchedule>::new();
    let list = Resource::new(move || (created.get(), delete.version().get(), resource.clone()), |(_, _, r)| list_schedules(Some(r)));
    let scheduled = StoredValue::new(scheduled);
    let choice = RwSignal::new(scheduled.with_value(|s| s.choices()[0].0.to_string()));
    let number = RwSignal::new("24".to_string());
    let when = RwSignal::new("weekdays 19:00".to_string());
    let zone = RwSignal::new("UTC".to_string());
    // After hydration: the browser's zone (the server cannot know it).
    Effect::new(move |_| zone.set(local_zone()));
    let problem = RwSignal::new(None::<ApiError>);
    let create = Action::new(|spec: &ScheduleSpec| create_schedule(spec.clone()));
    Effect::new(move |_| match create.value().get() {
        Some(Ok(_)) => {
            problem.set(None);
            created.update(|n| *n += 1);
        }
        Some(Err(e)) => problem.set(Some(e)),
        None => {}
    });
    let reads_as = move || match Recurrence::parse(&when.get()) {
        Ok(r) => r.describe(),
        Err(e) => e.message().to_string(),
    };
    let needs_number = move || matches!(choice.get().as_str(), "delete-idle" | "min");
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let spec = scheduled
            .with_value(|s| s.action(&choice.get_untracked(), &number.get_untracked()))
            .map(|action| ScheduleSpec { action, when: when.get_untracked(), time_zone: zone.get_untracked().trim().to_string() });
        dispatch_or_show(create, problem, spec.and_then(|spec| spec.validate().map(|_| spec)));
    };
    view! {
        <section class="card schedules" id="schedules">
            <h2>"Schedules"</h2>
            <Transition fallback=|| view! { <p class="muted">"Reading schedules…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(list) if list.is_empty() => view! { <p class="muted">"No schedules: it runs until someone stops it."</p> }.into_any(),
                        Ok(list) => view! { <ScheduleTable list delete/> }.into_any(),
                        Err(error) => view! { <ErrorPanel error/> }.into_any(),
                    }
                })}
            </Transition>
            <form class="form-grid" on:submit=submit>
                <label class="field">
                    <span>"Do"</span>
                    <select name="schedule-action" on:change=move |ev| choice.set(event_target_value(&ev))>
                        {scheduled.with_value(|s| s.choices()).iter().map(|(value, label)| view! {
                            <option value=*value selected=move || choice.get() == *value>{*label}</option>
                        }).collect_view()}
                    </select>
                </label>
                <Show when=needs_number>
                    <label class="field">
                        <span>{move || if choice.get() == "min" { "Instances" } else { "Idle hours" }}</span>
                        <input name="schedule-number" prop:value=move || number.get() on:input=move |ev| number.set(event_target_value(&ev))/>
                    </label>
                </Show>
                <TextField label="When" name="schedule-when" value=when>
                    <small class="muted" id="schedule-reads-as">{reads_as}</small>
                </TextField>
                <TextField label="Time zone" name="schedule-zone" value=zone/>
                <div class="form-actions">
                    <button class="btn btn-primary" type="submit" disabled=move || create.pending().get() || !crate::auth::allowed("schedules/create")>
                        "Add schedule"
                    </button>
                </div>
            </form>
            {move || problem.get().map(|error| view! { <ErrorPanel error/> })}
        </section>
    }
}

/// Schedules with their next run, and a delete button each.
#[component]
pub fn ScheduleTable(list: Vec<Schedule>, delete: ServerAction<super::DeleteSchedule>) -> impl IntoView {
    view! {
        <table class="table schedule-list">
            <thead><tr><th>"Does"</th><th>"When"</th><th>"Next run"</th><th>"Last run"</th><th>"By"</th><th></th></tr></thead>
            <tbody>
                {list.into_iter().map(|s| {
                    let id = s.id;
                    view! {
                        <tr data-schedule=id>
                            <td>{s.action.describe()}</td>
                            <td>{format!("{} ({})", s.described, s.time_zone)}</td>
                            <td class="next-run">{s.next_run_local.clone().unwrap_or_else(|| "— (done)".into())}</td>
                            <td>{match (s.last_run_at, s.last_outcome) {
                                (Some(at), Some(outcome)) => format!("{}: {outcome}", short_time(&at)),
                                _ => "not yet".into(),
                            }}</td>
                            <td>{s.created_by}</td>
                            <td>
                                <ConfirmButton
                                    label="Delete"
                                    question="Delete this schedule?"
                                    pending=delete.pending()
                                    needs="schedules/delete"
                                    on_confirm=Callback::new(move |_| { delete.dispatch(super::DeleteSchedule { id }); })
                                />
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// Every schedule, for the Costs page.
#[component]
pub fn AllSchedules() -> impl IntoView {
    let delete = ServerAction::<super::DeleteSchedule>::new();
    let list = Resource::new(move || delete.version().get(), |_| list_schedules(None));
    view! {
        <h2 id="all-schedules">"Schedules"</h2>
        <Transition fallback=|| view! { <p class="muted">"Reading schedules…"</p> }>
            {move || Suspend::new(async move {
                match list.await {
                    Ok(list) if list.is_empty() => view! {
                        <p class="muted">"No schedules. Add one on a notebook's or an endpoint's page: stop a notebook every evening, delete an endpoint nobody calls."</p>
                    }.into_any(),
                    Ok(list) => view! { <ScheduleTable list delete/> }.into_any(),
                    Err(error) => view! { <ErrorPanel error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

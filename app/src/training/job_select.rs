//! Choosing a completed local job: the deploy form and the rollout form
//! both offer the jobs whose model can be served.

use super::{JobStatus, LocalJobSummary};
use crate::components::percent;
use crate::ApiError;
use leptos::prelude::*;
use leptos_router::components::A;

/// A `<select>` named `name` of the completed jobs in `jobs`, bound to `job`
/// (the chosen job's id as text). When `job` is empty the newest is chosen;
/// `on_pick` hears that choice and every later one (the deploy form names
/// the endpoint after the job).
#[component]
pub fn CompletedJobSelect(
    jobs: Resource<Result<Vec<LocalJobSummary>, ApiError>>,
    job: RwSignal<String>,
    name: &'static str,
    #[prop(optional)] on_pick: Option<Callback<i64>>,
) -> impl IntoView {
    view! {
        <Suspense fallback=|| view! { <select disabled=true><option>"Loading…"</option></select> }>
            {move || Suspend::new(async move {
                let done: Vec<LocalJobSummary> = jobs.await.unwrap_or_default().into_iter().filter(|j| j.status == JobStatus::Completed).collect();
                if let (Some(first), true) = (done.first(), job.get_untracked().is_empty()) {
                    job.set(first.id.to_string());
                    if let Some(pick) = on_pick {
                        pick.run(first.id);
                    }
                }
                let empty = done.is_empty();
                view! {
                    <select name=name on:change=move |ev| {
                        let value = event_target_value(&ev);
                        if let (Some(pick), Ok(id)) = (on_pick, value.parse()) {
                            pick.run(id);
                        }
                        job.set(value);
                    }>
                        {done.into_iter().map(|j| {
                            let id = j.id.to_string();
                            let label = format!(
                                "#{} {} · {} · test accuracy {}",
                                j.id,
                                j.name,
                                j.architecture.as_str(),
                                j.test_accuracy.map(percent).unwrap_or_else(|| "—".into())
                            );
                            let selected = job.get_untracked() == id;
                            view! { <option value=id selected=selected>{label}</option> }
                        }).collect_view()}
                    </select>
                    {empty.then(|| view! { <span class="muted">"No completed local job yet: train one on the "<A href="/training">"Training"</A>" page."</span> })}
                }
            })}
        </Suspense>
    }
}

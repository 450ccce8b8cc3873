//! The change journal's page and table: every change Sagedeck made or tried,
//! with before and after, and a Revert button on the changes that can be
//! undone (scaling policies so far). A revert is itself a change: it is
//! recorded, and names the change it undid.

use crate::components::{short_time, Badge, ErrorPanel, Loading, PageHeader};
use crate::overview::{recent_changes, ChangeRecord};
use crate::scaling::ScalingPolicy;
use crate::ApiError;
use leptos::prelude::*;

/// The server's side (implemented in the `server` crate).
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait ReverterService: Send + Sync {
    /// Puts the target back as the change found it; returns the new record.
    async fn revert(&self, id: i64) -> Result<ChangeRecord, ApiError>;
}

#[cfg(feature = "ssr")]
pub type Reverter = std::sync::Arc<dyn ReverterService>;

#[server(endpoint = "journal/revert")]
pub async fn revert_change(id: i64) -> Result<ChangeRecord, ApiError> {
    crate::error::service::<Reverter>()?.revert(id).await
}

/// A stored state in words: scaling policies are kept as JSON so they can be
/// put back; everything else is already words.
pub fn describe_state(state: &str) -> String {
    if state == "null" {
        return "none".to_string();
    }
    match serde_json::from_str::<ScalingPolicy>(state) {
        Ok(p) => format!(
            "min {} · max {} · target {}/instance/min · cooldowns in {} s, out {} s{}",
            p.min_instances,
            p.max_instances,
            p.target_value,
            p.scale_in_cooldown_s,
            p.scale_out_cooldown_s,
            if p.disable_scale_in { " · no scale-in" } else { "" }
        ),
        Err(_) => state.to_string(),
    }
}

#[component]
pub fn JournalPage() -> impl IntoView {
    let version = RwSignal::new(0u32);
    let changes = Resource::new(move || version.get(), |_| recent_changes(500));
    let filter = RwSignal::new(String::new());
    view! {
        <PageHeader title="Change journal">
            <button class="btn" on:click=move |_| version.update(|v| *v += 1)>"Refresh"</button>
        </PageHeader>
        <p class="lede">"Every change Sagedeck made or tried, on AWS or locally, newest first. Changes to scaling can be reverted in one click; the revert is recorded too."</p>
        <section class="card">
            <label class="field">
                <span>"Filter (action, target, outcome)"</span>
                <input id="journal-filter" prop:value=move || filter.get() on:input=move |ev| filter.set(event_target_value(&ev))/>
            </label>
            <Transition fallback=|| view! { <Loading text="Reading the journal…"/> }>
                {move || Suspend::new(async move {
                    match changes.await {
                        Ok(list) => {
                            let needle = filter.get().to_lowercase();
                            let shown: Vec<ChangeRecord> = list
                                .into_iter()
                                .filter(|c| needle.is_empty() || format!("{} {} {} {}", c.action, c.target, c.outcome, c.backend).to_lowercase().contains(&needle))
                                .collect();
                            view! { <ChangeTable changes=shown on_reverted=Callback::new(move |_| version.update(|v| *v += 1))/> }.into_any()
                        }
                        Err(error) => view! { <ErrorPanel error/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// The journal as a table; `on_reverted` runs after a successful revert.
#[component]
pub fn ChangeTable(changes: Vec<ChangeRecord>, #[prop(optional)] on_reverted: Option<Callback<()>>) -> impl IntoView {
    if changes.is_empty() {
        return view! { <p class="muted">"No changes recorded yet. Every start, stop, deploy or policy edit made from Sagedeck is listed here."</p> }.into_any();
    }
    let revert = Action::new(|id: &i64| revert_change(*id));
    Effect::new(move |_| {
        if let (Some(Ok(_)), Some(done)) = (revert.value().get(), on_reverted) {
            done.run(());
        }
    });
    view! {
        {move || revert.value().get().and_then(Result::err).map(|error: ApiError| view! { <ErrorPanel error/> })}
        <table class="table" id="changes">
            <thead><tr><th>"When"</th><th>"Action"</th><th>"Target"</th><th>"Change"</th><th>"Outcome"</th><th>"By"</th><th></th></tr></thead>
            <tbody>
                {changes.into_iter().map(|c| {
                    let tone = if c.outcome == "ok" { "ok" } else { "bad" };
                    let change = match (c.before.as_deref().map(describe_state), c.after.as_deref().map(describe_state)) {
                        (Some(b), Some(a)) => format!("{b} → {a}"),
                        (None, Some(a)) => a,
                        (Some(b), None) => b,
                        (None, None) => String::new(),
                    };
                    let note = match (c.revert_of, c.reverted_by) {
                        (Some(of), _) => Some(format!(" (reverts #{of})")),
                        (_, Some(by)) => Some(format!(" (reverted by #{by})")),
                        _ => None,
                    };
                    let id = c.id;
                    let action = c.action.clone();
                    view! {
                        <tr data-change=id data-action=action>
                            <td>{short_time(&c.at)}</td>
                            <td>{c.backend}" · "{c.action}</td>
                            <td><code>{c.target}</code></td>
                            <td>{change}<span class="muted">{c.message.map(|m| format!(" {m}"))}{note}</span></td>
                            <td><Badge text=c.outcome tone/></td>
                            <td>{c.actor}</td>
                            <td>{c.revertible.then(|| view! {
                                <button class="btn btn-small revert" disabled=move || revert.pending().get() on:click=move |_| { revert.dispatch(id); }>"Revert"</button>
                            })}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

//! The change journal's page and table: every change Sagedeck made or tried,
//! with before and after, and a Revert button on the changes that can be
//! undone (scaling policies so far). A revert is itself a change: it is
//! recorded, and names the change it undid.

pub mod state;

use crate::components::{short_time, Badge, ErrorPanel, Loading, PageHeader};
use crate::overview::{search_changes, ChangeRecord, JournalQuery};
use crate::ApiError;
use leptos::prelude::*;
use state::{diff, diff_size, DiffLine, State};

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

#[component]
pub fn JournalPage() -> impl IntoView {
    let version = RwSignal::new(0u32);
    let text = RwSignal::new(String::new());
    let actor = RwSignal::new(String::new());
    let outcome = RwSignal::new(String::new());
    let backend = RwSignal::new(String::new());
    // Paging: the id the next page starts below; None for the newest.
    let before = RwSignal::new(None::<i64>);
    const PAGE: u32 = 100;
    let query = move || JournalQuery {
        text: text.get(),
        actor: Some(actor.get().trim().to_string()).filter(|a| !a.is_empty()),
        outcome: Some(outcome.get()).filter(|o| !o.is_empty()),
        backend: Some(backend.get()).filter(|b| !b.is_empty()),
        before: before.get(),
        limit: PAGE,
        ..Default::default()
    };
    let changes = Resource::new(move || (version.get(), query()), |(_, q)| search_changes(q));
    let select = |signal: RwSignal<String>, id: &'static str, label: &'static str, options: &'static [(&'static str, &'static str)]| {
        view! {
            <label class="field">
                <span>{label}</span>
                <select id=id on:change=move |ev| { signal.set(event_target_value(&ev)); before.set(None); }>
                    {options.iter().map(|(value, text)| view! { <option value=*value>{*text}</option> }).collect_view()}
                </select>
            </label>
        }
    };
    view! {
        <PageHeader title="Change journal">
            <button class="btn" on:click=move |_| version.update(|v| *v += 1)>"Refresh"</button>
        </PageHeader>
        <p class="lede">"Every change Sagedeck made or tried, on AWS or locally, by whom, newest first; refused attempts (a missing role, a cross-site request) and sign-ins too. Changes to scaling, concurrency and IAM can be reverted in one click; the revert is recorded too."</p>
        <section class="card">
            <div class="form-row journal-filters">
                <label class="field">
                    <span>"Search (action, target, message, user)"</span>
                    <input id="journal-filter" prop:value=move || text.get() on:input=move |ev| { text.set(event_target_value(&ev)); before.set(None); }/>
                </label>
                <label class="field">
                    <span>"User"</span>
                    <input id="journal-actor" placeholder="any" prop:value=move || actor.get() on:input=move |ev| { actor.set(event_target_value(&ev)); before.set(None); }/>
                </label>
                {select(outcome, "journal-outcome", "Outcome", &[("", "any"), ("ok", "ok"), ("failed", "failed")])}
                {select(backend, "journal-backend", "Where", &[("", "any"), ("local", "local"), ("aws", "AWS")])}
            </div>
            <Transition fallback=|| view! { <Loading text="Reading the journal…"/> }>
                {move || Suspend::new(async move {
                    match changes.await {
                        Ok(list) => {
                            let oldest = list.last().map(|c| c.id);
                            let full = list.len() as u32 == PAGE;
                            view! {
                                <ChangeTable changes=list on_reverted=Callback::new(move |_| version.update(|v| *v += 1))/>
                                <div class="pager">
                                    {move || before.get().is_some().then(|| view! {
                                        <button class="btn btn-small" on:click=move |_| before.set(None)>"Newest"</button>
                                    })}
                                    {full.then(|| view! {
                                        <button class="btn btn-small" id="journal-older" on:click=move |_| before.set(oldest)>"Older"</button>
                                    })}
                                </div>
                            }.into_any()
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
                    let (before, after) = (c.before.as_deref().map(State::parse), c.after.as_deref().map(State::parse));
                    let change = match (before.as_ref().map(State::summary), after.as_ref().map(State::summary)) {
                        (Some(b), Some(a)) => format!("{b} → {a}"),
                        (None, Some(a)) => a,
                        (Some(b), None) => b,
                        (None, None) => String::new(),
                    };
                    // Documents (policies) get their diff on demand.
                    let documents = [&before, &after].iter().any(|s| s.as_ref().is_some_and(State::is_document));
                    let lines = documents.then(|| diff(before.as_ref().unwrap_or(&State::None), after.as_ref().unwrap_or(&State::None)));
                    let note = match (c.revert_of, c.reverted_by) {
                        (Some(of), _) => Some(format!(" (reverts #{of})")),
                        (_, Some(by)) => Some(format!(" (reverted by #{by})")),
                        _ => None,
                    };
                    let id = c.id;
                    let action = c.action.clone();
                    // Undoing a change needs the role the change needed.
                    let needed = crate::auth::revert_role(&c.action);
                    view! {
                        <tr data-change=id data-action=action>
                            <td>{short_time(&c.at)}</td>
                            <td>{c.backend}" · "{c.action}</td>
                            <td><code>{c.target}</code></td>
                            <td class="change">
                                <span class="change-summary">{change}</span>
                                <span class="muted">{c.message.map(|m| format!(" {m}"))}{note}</span>
                                {lines.map(|lines| view! { <ChangeDiff lines/> })}
                            </td>
                            <td><Badge text=c.outcome tone/></td>
                            <td>{c.actor}</td>
                            <td>{c.revertible.then(|| {
                                let may = move || crate::auth::may(needed);
                                view! {
                                    <button class="btn btn-small revert" title=move || (!may()).then(|| format!("Needs the {needed} role"))
                                        disabled=move || revert.pending().get() || !may() on:click=move |_| { revert.dispatch(id); }>"Revert"</button>
                                }
                            })}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// The before and after documents as a unified line diff, folded.
#[component]
fn ChangeDiff(lines: Vec<DiffLine>) -> impl IntoView {
    let size = diff_size(&lines);
    view! {
        <details class="change-diff">
            <summary>{format!("Diff ({size})")}</summary>
            <pre class="diff">
                {lines.into_iter().map(|l| match l {
                    DiffLine::Same(t) => view! { <span class="diff-same">{format!("  {t}")}</span> },
                    DiffLine::Removed(t) => view! { <span class="diff-removed">{format!("- {t}")}</span> },
                    DiffLine::Added(t) => view! { <span class="diff-added">{format!("+ {t}")}</span> },
                }).collect_view()}
            </pre>
        </details>
    }
}

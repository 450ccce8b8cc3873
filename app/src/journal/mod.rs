//! The change journal's page and table: every change Sagedeck made or tried,
//! with before and after, and a Revert button on the changes that can be
//! undone (scaling policies so far). A revert is itself a change: it is
//! recorded, and names the change it undid.

pub mod state;

use crate::components::{count_of, short_time, Badge, DataTable, ErrorPanel, Loading, PageHeader};
use crate::overview::{count_changes, search_changes, ChangeRecord, JournalQuery};
use crate::ApiError;
use leptos::prelude::*;
use leptos_router::components::A;
use state::{diff_size, DiffLine, State};

/// The server's side (implemented in the `server` crate).
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait ReverterService: Send + Sync {
    /// Puts the target back as the change found it; returns the new record.
    async fn revert(&self, id: i64) -> Result<ChangeRecord, ApiError>;
}

#[cfg(feature = "ssr")]
pub type Reverter = std::sync::Arc<dyn ReverterService>;

#[server(client = crate::csrf::CsrfClient, endpoint = "journal/revert")]
pub async fn revert_change(id: i64) -> Result<ChangeRecord, ApiError> {
    crate::error::service::<Reverter>()?.revert(id).await
}

/// The journal's view as the URL holds it, so a view can be shared: `q`
/// (words), `user`, `outcome`, `where` (backend) and `before` (the page).
fn journal_query(get: impl Fn(&str) -> Option<String>) -> JournalQuery {
    let text = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    JournalQuery {
        text: get("q").unwrap_or_default(),
        actor: text("user"),
        outcome: text("outcome").filter(|o| matches!(o.as_str(), "ok" | "failed")),
        backend: text("where").filter(|b| matches!(b.as_str(), "aws" | "local")),
        before: get("before").and_then(|b| b.parse().ok()),
        limit: JOURNAL_PAGE,
        ..Default::default()
    }
}

fn journal_href(q: &JournalQuery) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if !q.text.is_empty() {
        pairs.push(("q", q.text.clone()));
    }
    for (k, v) in [("user", &q.actor), ("outcome", &q.outcome), ("where", &q.backend)] {
        if let Some(v) = v {
            pairs.push((k, v.clone()));
        }
    }
    if let Some(b) = q.before {
        pairs.push(("before", b.to_string()));
    }
    if pairs.is_empty() {
        return "/journal".into();
    }
    let query: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={}", crate::list_view::encode_component(&v))).collect();
    format!("/journal?{}", query.join("&"))
}

const JOURNAL_PAGE: u32 = 100;

#[component]
pub fn JournalPage() -> impl IntoView {
    let version = RwSignal::new(0u32);
    let url = leptos_router::hooks::use_query_map();
    let query = Memo::new(move |_| url.with(|m| journal_query(|k| m.get(k))));
    let changes = Resource::new(move || (version.get(), query.get()), |(_, q)| search_changes(q));
    let total = Resource::new(move || (version.get(), query.get()), |(_, q)| count_changes(JournalQuery { before: None, ..q }));
    let navigate = leptos_router::hooks::use_navigate();
    // Every filter change starts from the newest entry.
    let go = move |change: &dyn Fn(&mut JournalQuery)| {
        let mut q = JournalQuery { before: None, ..query.get_untracked() };
        change(&mut q);
        navigate(&journal_href(&q), leptos_router::NavigateOptions { replace: true, scroll: false, ..Default::default() });
    };
    let go = StoredValue::new(go);
    let some = |v: String| Some(v.trim().to_string()).filter(|v| !v.is_empty());
    let select = move |id: &'static str, label: &'static str, current: fn(&JournalQuery) -> Option<String>, set: fn(&mut JournalQuery, Option<String>), options: &'static [(&'static str, &'static str)]| {
        view! {
            <label class="field">
                <span>{label}</span>
                <select id=id on:change=move |ev| { let v = some(event_target_value(&ev)); go.with_value(|go| go(&move |q| set(q, v.clone()))); }>
                    {options.iter().map(|(value, text)| view! {
                        <option value=*value selected=move || query.with(|q| current(q).as_deref().unwrap_or("") == *value)>{*text}</option>
                    }).collect_view()}
                </select>
            </label>
        }
    };
    view! {
        <PageHeader title="Change journal" refresh=version lede="Every change Sagedeck made or tried, on AWS or locally, by whom, newest first; refused attempts (a missing role, a cross-site request) and sign-ins too. Changes to scaling, concurrency and IAM can be reverted in one click; the revert is recorded too."/>
        <section class="card">
            <div class="form-row journal-filters">
                <label class="field">
                    <span>"Search (action, target, message, user)"</span>
                    <input id="journal-filter" maxlength="200" prop:value=move || query.with(|q| q.text.clone())
                        on:input=move |ev| { let v = event_target_value(&ev); go.with_value(|go| go(&move |q| q.text = v.clone())); }/>
                </label>
                <label class="field">
                    <span>"User"</span>
                    <input id="journal-actor" placeholder="any" maxlength="200" prop:value=move || query.with(|q| q.actor.clone().unwrap_or_default())
                        on:input=move |ev| { let v = some(event_target_value(&ev)); go.with_value(|go| go(&move |q| q.actor = v.clone())); }/>
                </label>
                {select("journal-outcome", "Outcome", |q| q.outcome.clone(), |q, v| q.outcome = v, &[("", "any"), ("ok", "ok"), ("failed", "failed")])}
                {select("journal-backend", "Where", |q| q.backend.clone(), |q, v| q.backend = v, &[("", "any"), ("local", "local"), ("aws", "AWS")])}
            </div>
            <Transition fallback=|| view! { <Loading text="Reading the journal…"/> }>
                {move || Suspend::new(async move {
                    let total = total.await.ok();
                    match changes.await {
                        Ok(list) => {
                            let oldest = list.last().map(|c| c.id);
                            let full = list.len() as u32 == JOURNAL_PAGE;
                            let q = query.get_untracked();
                            let newest = (q.before.is_some()).then(|| journal_href(&JournalQuery { before: None, ..q.clone() }));
                            let older = full.then(|| journal_href(&JournalQuery { before: oldest, ..q.clone() }));
                            let count = total.map(|t| format!("{} matching", count_of(list.len(), t, "change", "changes")));
                            view! {
                                {count.map(|c| view! { <p class="muted" id="journal-count">{c}</p> })}
                                <ChangeTable changes=list on_reverted=Callback::new(move |_| version.update(|v| *v += 1))/>
                                <div class="pager">
                                    {newest.map(|href| view! { <A href=href attr:class="btn btn-small">"Newest"</A> })}
                                    {older.map(|href| view! { <A href=href attr:class="btn btn-small" attr:id="journal-older">"Older"</A> })}
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
        <DataTable id="changes" headers=&["When", "Action", "Target", "Change", "Outcome", "By", ""]>
            {changes.into_iter().map(|c| {
                let tone = if c.outcome == "ok" { "ok" } else { "bad" };
                let (before, after) = (c.before.as_deref().map(State::parse), c.after.as_deref().map(State::parse));
                let change = match (before.as_ref().map(State::summary), after.as_ref().map(State::summary)) {
                    (Some(b), Some(a)) => format!("{b} → {a}"),
                    (None, Some(a)) => a,
                    (Some(b), None) => b,
                    (None, None) => String::new(),
                };
                // Documents (policies) come with their diff, folded.
                let lines = c.diff;
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
        </DataTable>
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

//! The IAM page: review this AWS account or an exported authorization-details
//! file (read and judged in the browser), the roles table with scores and
//! badges, a role's findings beside its documents with each flagged
//! statement marked, and the live policy editor.

use super::analyze::{analyze_document, Finding, Severity};
use super::policy;
use super::fix::FixPlan;
use super::{apply_role_fix, get_account_review, plan_role_fix, review_file, AccountReview, FixOutcome, ReviewedRole};
use crate::journal::revert_change;
use crate::components::{Card, DataTable, ErrorPanel, PageHeader};
use crate::ApiError;
use leptos::prelude::*;

fn now_unix() -> i64 {
    #[cfg(feature = "hydrate")]
    {
        (js_sys::Date::now() / 1000.0) as i64
    }
    #[cfg(not(feature = "hydrate"))]
    {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
    }
}

fn tone(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "bad",
        Severity::Medium => "busy",
        Severity::Low => "idle",
    }
}

/// The seeds' scoped policy: what the editor starts with.
const START: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": "sagemaker:InvokeEndpoint",
      "Resource": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/dogs"
    }
  ]
}"#;

#[component]
pub fn IamPage() -> impl IntoView {
    let unused = RwSignal::new("90".to_string());
    let pasted = RwSignal::new(String::new());
    let review = RwSignal::new(None::<Result<AccountReview, ApiError>>);
    // Each review gets a new number, so its view is built afresh rather than
    // patched over the previous one's rows.
    let generation = RwSignal::new(0u32);
    // Every request takes a ticket; an answer is shown only if no later
    // request was made meanwhile (a slow account review must not replace
    // the file opened after it was asked for).
    let tickets = RwSignal::new(0u32);
    let ticket = move || {
        tickets.update(|t| *t += 1);
        tickets.get_untracked()
    };
    let show = move |t: u32, r: Result<AccountReview, ApiError>| {
        if t == tickets.get_untracked() {
            generation.update(|g| *g += 1);
            review.set(Some(r));
        }
    };
    // The account's review lands in the same place as a file's: the last
    // one asked for is shown.
    let loading = RwSignal::new(false);
    let days = move || unused.get().trim().parse::<u32>().ok().filter(|d| (1..=3650).contains(d)).unwrap_or(90);
    let review_account = move || {
        let (d, t) = (days(), ticket());
        loading.set(true);
        leptos::task::spawn_local(async move {
            show(t, get_account_review(d).await);
            loading.set(false);
        });
    };
    // Opened for one role (`?role=NAME`, from a notebook's page): review the
    // account at once so the role shows without a click. (Effects run in
    // the browser only.)
    let asked_for_role = leptos_router::hooks::use_query_map().with_untracked(|q| q.get("role").is_some());
    Effect::new(move |_| {
        if asked_for_role {
            review_account();
        }
    });
    let review_pasted = move || {
        let r = review_file("the pasted file", &pasted.get_untracked(), now_unix(), days()).map_err(ApiError::Invalid);
        show(ticket(), r);
    };
    view! {
        <PageHeader title="IAM"
            lede=concat!(
                "The roles of the ML stack, judged as a whole: trust policy, inline, managed and boundary policies together. ",
                "Each finding says where it is, what the risk is, and the fix.",
            )/>
        <Card title="What to review" id="iam-source">
            <div class="form-grid">
                <label class="field">
                    <span>"Unused after (days)"</span>
                    <input id="unused-days" prop:value=move || unused.get() on:input=move |ev| unused.set(event_target_value(&ev))/>
                </label>
                <div class="form-actions">
                    <button class="btn btn-primary" id="review-aws" disabled=move || loading.get() on:click=move |_| review_account()>
                        {move || if loading.get() { "Reading the account…" } else { "Review this AWS account" }}
                    </button>
                </div>
                <label class="field wide">
                    <span>"…or paste the output of "<code>"aws iam get-account-authorization-details"</code>" (reviewed in your browser; nothing is sent)"</span>
                    <textarea id="details-text" rows="4" prop:value=move || pasted.get() on:input=move |ev| pasted.set(event_target_value(&ev))></textarea>
                </label>
                <div class="form-actions">
                    <button class="btn" id="review-file" on:click=move |_| review_pasted()>"Review the pasted text"</button>
                    <label class="btn">
                        "Open a file…"
                        <input type="file" id="details-file" accept=".json,application/json" hidden=true on:change=move |ev| {
                            #[cfg(feature = "hydrate")]
                            {
                                let input: web_sys::HtmlInputElement = event_target(&ev);
                                if let Some(file) = input.files().and_then(|f| f.get(0)) {
                                    let name = file.name();
                                    let (days, t) = (days(), ticket());
                                    leptos::task::spawn_local(async move {
                                        let text = wasm_bindgen_futures::JsFuture::from(file.text()).await.ok().and_then(|t| t.as_string()).unwrap_or_default();
                                        show(t, review_file(&name, &text, now_unix(), days).map_err(ApiError::Invalid));
                                    });
                                }
                            }
                            #[cfg(not(feature = "hydrate"))]
                            let _ = ev;
                        }/>
                    </label>
                </div>
            </div>
        </Card>
        <For each=move || review.get().map(|r| (generation.get_untracked(), r)).into_iter() key=|(g, _)| *g let:item>
            {match item.1 {
                Err(error) => view! { <ErrorPanel error/> }.into_any(),
                Ok(review) => view! { <ReviewView review/> }.into_any(),
            }}
        </For>
        <LiveEditor/>
    }
}

#[component]
fn ReviewView(review: AccountReview) -> impl IntoView {
    let roles = StoredValue::new(review.roles.clone());
    let live = review.source.starts_with("AWS account");
    // `?role=NAME` (a link from a notebook's page) opens on that role.
    let asked = leptos_router::hooks::use_query_map().with_untracked(|q| q.get("role"));
    let first = asked.filter(|name| review.roles.iter().any(|r| &r.report.name == name)).or_else(|| review.roles.first().map(|r| r.report.name.clone()));
    let selected = RwSignal::new(first);
    let count = |r: &ReviewedRole, s: Severity| r.report.findings.iter().filter(|f| f.severity == s).count();
    let rows = review.roles.iter().map(|r| {
        let name = r.report.name.clone();
        let pick = name.clone();
        let score = r.report.score;
        view! {
            <tr data-role=name.clone() data-score=score class:selected=move || selected.get().as_deref() == Some(pick.as_str())
                on:click={ let n = name.clone(); move |_| selected.set(Some(n.clone())) }>
                <td><button class="link">{name.clone()}</button></td>
                <td><span class="score"><span class="score-bar" style=format!("width: {score}%")></span></span>" "{score}</td>
                <td class="reach">{r.report.reach.clone()}<br/><span class="muted">{r.report.kind.label()}</span></td>
                <td>
                    {[Severity::Critical, Severity::High, Severity::Medium, Severity::Low].into_iter().filter_map(|s| {
                        let n = count(r, s);
                        (n > 0).then(|| view! { <span class=format!("badge badge-{} sev-{}", tone(s), s.label())>{format!("{n} {}", s.label())}</span>" " })
                    }).collect_view()}
                    {r.report.findings.is_empty().then(|| view! { <span class="badge badge-ok">"clean"</span> })}
                </td>
                <td>{r.report.trusted_by.join(", ")}</td>
            </tr>
        }
    }).collect_view();
    view! {
        <section class="card" id="roles-card">
            <h2>{format!("{} roles · {}", review.roles.len(), review.source)}</h2>
            <p class="muted" id="risk-scale">
                "Risk ranks roles by what they can actually do (every policy, denies and the boundary considered): "
                {super::rank::SCALE.iter().map(|(score, words)| format!("{score} {words}")).collect::<Vec<_>>().join(" · ")}
                "; "{super::rank::EXPOSURE_NOTE}"."
            </p>
            <DataTable id="roles" headers=&["Role", "Risk", "Can", "Findings", "Trusted by"]>
                {rows}
            </DataTable>
        </section>
        <GraphView graph=super::graph::build(&review)/>
        {move || selected.get().and_then(|name| roles.with_value(|rs| rs.iter().find(|r| r.report.name == name).cloned())).map(|role| view! { <RoleView role live/> })}
    }
}

#[component]
fn RoleView(role: ReviewedRole, live: bool) -> impl IntoView {
    let fixable = role.report.trusted_by.iter().any(|t| t == "lambda.amazonaws.com" || t == "sagemaker.amazonaws.com");
    let findings = role.report.findings.clone();
    let docs: Vec<(String, String)> = role
        .input
        .trust
        .iter()
        .map(|t| ("trust policy".to_string(), t.clone()))
        .chain(role.input.policies.iter().map(|p| (p.name.clone(), p.document.clone())))
        .chain(role.input.boundary.iter().map(|b| (b.name.clone(), b.document.clone())))
        .collect();
    view! {
        <section class="card" id="role" data-role=role.report.name.clone()>
            <h2>{role.report.name.clone()}" "<code class="muted">{role.report.arn.clone()}</code></h2>
            {role.report.unreadable.iter().map(|(what, why)| view! { <p class="warning-error">{format!("{what} could not be read: {why}")}</p> }).collect_view()}
            <ul class="findings" id="role-findings">
                {findings.iter().map(|f| view! { <FindingItem finding=f.clone()/> }).collect_view()}
            </ul>
            {findings.is_empty().then(|| view! { <p class="ok-note">"No finding: this role holds what it needs and nothing more that the rules can see."</p> })}
            {(live && fixable && !findings.is_empty()).then(|| view! { <FixPanel role=role.report.name.clone()/> })}
            {docs.into_iter().map(|(name, doc)| view! { <DocumentView name doc findings=findings.clone()/> }).collect_view()}
        </section>
    }
}

/// The least-privilege fix: the plan with what the role could do before
/// and after, apply in one click, roll back in one click.
#[component]
fn FixPanel(role: String) -> impl IntoView {
    let role = StoredValue::new(role);
    let plan = Action::new(move |_: &()| plan_role_fix(role.get_value()));
    let apply = Action::new(move |_: &()| apply_role_fix(role.get_value()));
    let rollback = Action::new(|id: &i64| revert_change(*id));
    view! {
        <div class="fix" id="fix">
            <h3>"Least-privilege fix"</h3>
            <button class="btn" id="plan-fix" disabled=move || plan.pending().get() on:click=move |_| { plan.dispatch(()); }>"Propose the fix"</button>
            {move || plan.value().get().map(|r| match r {
                Err(error) => view! { <ErrorPanel error/> }.into_any(),
                Ok(p) => view! { <PlanView plan=p/> }.into_any(),
            })}
            {move || matches!(plan.value().get(), Some(Ok(_))).then(|| view! {
                <button class="btn btn-primary" id="apply-fix" title=crate::auth::needs_title("iam/fix/apply") disabled=move || !crate::auth::allowed("iam/fix/apply") || apply.pending().get() || matches!(apply.value().get(), Some(Ok(_)))
                    on:click=move |_| { apply.dispatch(()); }>"Apply: put the scoped policy, detach the rest"</button>
            })}
            {move || apply.value().get().map(|r| match r {
                Err(error) => view! { <ErrorPanel error/> }.into_any(),
                Ok(FixOutcome { steps, change_id, .. }) => view! {
                    <div id="fix-applied">
                        <p class="ok-note">"Applied: "{steps.join("; ")}</p>
                        {change_id.map(|id| view! {
                            <button class="btn" id="rollback-fix" disabled=move || rollback.pending().get() || matches!(rollback.value().get(), Some(Ok(_)))
                                on:click=move |_| { rollback.dispatch(id); }>"Roll back"</button>
                        })}
                    </div>
                }.into_any(),
            })}
            {move || rollback.value().get().map(|r| match r {
                Err(error) => view! { <ErrorPanel error/> }.into_any(),
                Ok(c) => view! { <p class="ok-note" id="fix-rolled-back">{format!("Rolled back (change #{}): the role has its policies as before.", c.id)}</p> }.into_any(),
            })}
        </div>
    }
}

#[component]
fn PlanView(plan: FixPlan) -> impl IntoView {
    let mark = |b: bool| if b { "✓" } else { "✗" };
    view! {
        <div id="fix-plan">
            <p>{format!("Built from {}. Risk score {} → {}; findings {} → {}.", plan.based_on, plan.before.score, plan.after.score, plan.before.findings.len(), plan.after.findings.len())}</p>
            <DataTable id="fix-diff" headers=&["The role can…", "Before", "After"]>
                {plan.capabilities.iter().map(|c| view! {
                    <tr data-what=c.what.clone() class:changed=c.before != c.after>
                        <td title=format!("{} on {}", c.action, c.resource)>{c.what.clone()}</td>
                        <td>{mark(c.before)}</td>
                        <td>{mark(c.after)}</td>
                    </tr>
                }).collect_view()}
            </DataTable>
            <p>{format!("Put inline policy {}:", plan.put_inline.0)}</p>
            <pre class="code" id="fix-policy">{plan.put_inline.1.clone()}</pre>
            {(!plan.detach.is_empty()).then(|| view! { <p>"Detach: "{plan.detach.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>().join(", ")}</p> })}
            {(!plan.delete_inline.is_empty()).then(|| view! { <p>"Delete inline: "{plan.delete_inline.join(", ")}</p> })}
        </div>
    }
}

#[component]
fn FindingItem(finding: Finding) -> impl IntoView {
    let f = finding;
    view! {
        <li class=format!("finding sev-{}", f.severity.label()) data-rule=f.rule.clone()>
            <span class=format!("badge badge-{}", tone(f.severity))>{f.severity.label()}</span>" "
            <strong>{f.title.clone()}</strong>
            {f.policy.clone().map(|p| view! { <span class="muted">{format!(" · {p}")}{f.pointer.clone().map(|x| format!(" {x}"))}</span> })}
            <div>{f.risk.clone()}</div>
            <div class="muted">"Fix: "{f.fix.clone()}</div>
        </li>
    }
}

/// A document, statement by statement, each flagged one marked with its findings.
#[component]
fn DocumentView(name: String, doc: String, findings: Vec<Finding>) -> impl IntoView {
    let parsed: Option<serde_json::Value> = serde_json::from_str(&doc).ok();
    let statements: Vec<(String, serde_json::Value)> = match parsed.as_ref().and_then(|v| v.get("Statement")) {
        Some(serde_json::Value::Array(items)) => items.iter().enumerate().map(|(i, s)| (format!("/Statement/{i}"), s.clone())).collect(),
        Some(one) => vec![("/Statement".to_string(), one.clone())],
        None => Vec::new(),
    };
    let mine: Vec<Finding> = findings.into_iter().filter(|f| f.policy.as_deref() == Some(name.as_str())).collect();
    let total = statements.len();
    let flagged_at = |pointer: &str| -> Vec<Finding> {
        mine.iter().filter(|f| f.pointer.as_deref().is_some_and(|p| p == pointer || p.starts_with(&format!("{pointer}/")))).cloned().collect()
    };
    let flagged = statements.iter().filter(|(p, _)| !flagged_at(p).is_empty()).count();
    // Long documents (AWS's managed ones run to dozens of statements) open
    // folded; the flagged statements are what to read first.
    let open = total <= 8;
    view! {
        <details class="document" data-policy=name.clone() open=open>
            <summary>
                <strong>{name.clone()}</strong>
                {format!(" · {total} statement{} · {flagged} flagged", if total == 1 { "" } else { "s" })}
            </summary>
            {if statements.is_empty() {
                view! { <pre class="code">{if doc.is_empty() { "(document not available)".to_string() } else { doc.clone() }}</pre> }.into_any()
            } else {
                statements.into_iter().map(|(pointer, s)| {
                    let here = flagged_at(&pointer);
                    let worst = here.iter().map(|f| f.severity).max();
                    let class = worst.map(|w| format!("stmt flagged sev-{}", w.label())).unwrap_or_else(|| "stmt".into());
                    let notes = here.iter().map(|f| format!("{}: {}", f.severity.label(), f.title)).collect::<Vec<_>>();
                    view! {
                        <div class=class data-pointer=pointer.clone()>
                            {(!notes.is_empty()).then(|| view! { <div class="stmt-notes">{format!("{pointer} — {}", notes.join(" · "))}</div> })}
                            <pre class="code">{serde_json::to_string_pretty(&s).unwrap_or_default()}</pre>
                        </div>
                    }
                }).collect_view().into_any()
            }}
        </details>
    }
}

/// Paste or edit a policy: findings as you type, JSON errors to the line.
#[component]
fn LiveEditor() -> impl IntoView {
    let text = RwSignal::new(START.to_string());
    let result = Memo::new(move |_| analyze_document(&text.get()));
    view! {
        <Card title="Live policy editor" id="live-editor" note="Paste or edit a permissions policy; it is judged in your browser as you type.">
            <div class="two-columns">
                <textarea id="policy-text" rows="16" spellcheck="false" prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev))></textarea>
                <div>
                    {move || match result.get() {
                        Err(e) => view! { <p class="warning-error" id="editor-error" data-line=e.line.unwrap_or(0)>{policy_error_words(&e)}</p> }.into_any(),
                        Ok(found) if found.is_empty() => view! { <p class="ok-note" id="editor-clean">"No finding."</p> }.into_any(),
                        Ok(found) => view! {
                            <ul class="findings" id="editor-findings">{found.into_iter().map(|f| view! { <FindingItem finding=f/> }).collect_view()}</ul>
                        }.into_any(),
                    }}
                </div>
            </div>
        </Card>
    }
}

fn policy_error_words(e: &policy::PolicyError) -> String {
    match e.line {
        Some(line) => format!("JSON error on line {line}: {}", e.message),
        None => format!("Not a policy: {}", e.message),
    }
}

/// The graph as SVG: four columns, links coloured by severity.
#[component]
fn GraphView(graph: super::graph::Graph) -> impl IntoView {
    const COL_X: [f64; 4] = [10.0, 260.0, 510.0, 760.0];
    const W: f64 = 220.0;
    const H: f64 = 26.0;
    const GAP: f64 = 34.0;
    let mut row = [0usize; 4];
    let pos: Vec<(f64, f64)> = graph
        .nodes
        .iter()
        .map(|n| {
            let c = n.column as usize;
            let y = 36.0 + row[c] as f64 * GAP;
            row[c] += 1;
            (COL_X[c], y)
        })
        .collect();
    let height = 50.0 + *row.iter().max().unwrap_or(&1) as f64 * GAP;
    let sev = |s: Option<Severity>| s.map(|s| s.label()).unwrap_or("none");
    let short = |t: &str| if t.chars().count() > 30 { format!("{}…", t.chars().take(29).collect::<String>()) } else { t.to_string() };
    view! {
        <Card title="Who can do what" id="iam-graph">
            <svg viewBox=format!("0 0 990 {height}") class="graph" role="img" aria-label="Principals, roles, policies and what they allow">
                {["May assume", "Role", "Policy", "Can"].iter().enumerate().map(|(i, t)| view! { <text class="graph-head" x=COL_X[i] y="18">{*t}</text> }).collect_view()}
                {graph.edges.iter().map(|(a, b, s)| {
                    let ((x1, y1), (x2, y2)) = (pos[*a], pos[*b]);
                    let (x1, y1, x2, y2) = (x1 + W, y1 + H / 2.0, x2, y2 + H / 2.0);
                    let mid = (x1 + x2) / 2.0;
                    view! { <path class=format!("edge sev-{}", sev(*s)) d=format!("M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}")/> }
                }).collect_view()}
                {graph.nodes.iter().zip(&pos).map(|(n, (x, y))| view! {
                    <g class=format!("node sev-{}", sev(n.severity)) data-label=n.label.clone()>
                        <rect x=*x y=*y width=W height=H rx="5"/>
                        <text x=x + 8.0 y=y + 17.0>{short(&n.label)}<title>{n.label.clone()}</title></text>
                    </g>
                }).collect_view()}
            </svg>
        </Card>
    }
}

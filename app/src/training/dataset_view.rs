//! The dataset check's report, shown on the training form and on a local job's page.

use super::DatasetReport;
use leptos::prelude::*;

/// The dataset check's findings: counts per split and class, what was skipped and why.
#[component]
pub fn DatasetReportView(report: DatasetReport) -> impl IntoView {
    let ok = report.can_train();
    let classes = report.classes.clone();
    let skipped = report.skipped.clone();
    let skipped_count = skipped.len();
    view! {
        <div class=if ok { "dataset-report" } else { "dataset-report refused" } data-can-train=ok.to_string()>
            <p>
                <strong>{if ok { "Ready to train: " } else { "Can't train on this dataset: " }}</strong>
                {format!(
                    "{} classes, {} usable images, {} skipped, checked in {:.1} s.",
                    report.classes.len(),
                    report.usable_images(),
                    skipped_count,
                    report.seconds
                )}
            </p>
            {(!report.problems.is_empty()).then(|| view! {
                <ul class="problems">{report.problems.iter().map(|p| view! { <li>{p.clone()}</li> }).collect_view()}</ul>
            })}
            {(!report.warnings.is_empty()).then(|| view! {
                <ul class="warnings">{report.warnings.iter().map(|p| view! { <li>{p.clone()}</li> }).collect_view()}</ul>
            })}
            {(!classes.is_empty()).then(|| view! {
                <table class="table compact">
                    <thead><tr><th>"Class"</th>{report.splits.iter().map(|s| view! { <th>{s.split.clone()}</th> }).collect_view()}</tr></thead>
                    <tbody>
                        {classes.iter().enumerate().map(|(i, c)| view! {
                            <tr><td title=c.folder.clone()>{c.name.clone()}</td>
                                {report.splits.iter().map(|s| view! { <td>{s.per_class.get(i).copied().unwrap_or(0)}</td> }).collect_view()}
                            </tr>
                        }).collect_view()}
                        <tr class="total"><td>"Total"</td>{report.splits.iter().map(|s| view! { <td>{s.total}</td> }).collect_view()}</tr>
                    </tbody>
                </table>
            })}
            {(skipped_count > 0).then(|| view! {
                <details class="skipped" open=skipped_count <= 10>
                    <summary>{format!("{skipped_count} files skipped")}</summary>
                    <ul>{skipped.into_iter().map(|s| view! { <li><code>{s.path}</code>": "{s.reason}</li> }).collect_view()}</ul>
                </details>
            })}
        </div>
    }
}

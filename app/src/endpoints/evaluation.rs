//! Evaluation, the test bench on an endpoint's page: a labelled folder through the
//! endpoint, shown as accuracy, a confusion matrix, a latency histogram and
//! the images it got wrong.

use super::{run_test_bench, Backend, TestBenchReport};
use crate::components::{Card, ErrorPanel, TextField};
use crate::names::EndpointName;
use crate::training::get_training_defaults;
use leptos::prelude::*;

#[component]
pub fn TestBench(backend: Backend, name: EndpointName) -> impl IntoView {
    let folder = RwSignal::new(String::new());
    let limit = RwSignal::new("200".to_string());
    let defaults = Resource::new(|| (), |_| get_training_defaults());
    let name = StoredValue::new(name);
    let run = Action::new(move |(folder, limit): &(String, u32)| run_test_bench(backend, name.get_value(), folder.clone(), *limit));
    view! {
        <Card title="Image test bench" id="test-bench" note="Runs a labelled folder (a dataset with test/, or one folder per class) through this endpoint, four requests at a time.">
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    if let Ok(d) = defaults.await {
                        if folder.get_untracked().is_empty() && d.demo_exists {
                            folder.set(d.demo_path.clone());
                        }
                    }
                })}
            </Suspense>
            <form class="form-grid" on:submit=move |ev| {
                ev.prevent_default();
                run.dispatch((folder.get_untracked(), limit.get_untracked().trim().parse().unwrap_or(200)));
            }>
                <TextField label="Labelled folder" name="folder" wide=true value=folder/>
                <TextField label="At most (images)" name="limit" inputmode="numeric" value=limit/>
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary" id="run-test-bench" disabled=move || run.pending().get()>
                        {move || if run.pending().get() { "Running the images through the endpoint…" } else { "Run the test bench" }}
                    </button>
                </div>
            </form>
            {move || run.value().get().map(|r| match r {
                Ok(report) => view! { <Report report/> }.into_any(),
                Err(error) => view! { <ErrorPanel error/> }.into_any(),
            })}
        </Card>
    }
}

#[component]
fn Report(report: TestBenchReport) -> impl IntoView {
    let max_cell = report.confusion.iter().flatten().copied().max().unwrap_or(1).max(1);
    let max_bin = report.latency_bins_ms.iter().map(|b| b.1).max().unwrap_or(1).max(1);
    let classes = report.classes.clone();
    let failed = report.failed.clone();
    view! {
        <div class="bench-report" id="bench-report" data-accuracy=format!("{:.4}", report.accuracy()) data-images=report.images>
            <p class="big-figure">
                <strong>{format!("{:.1} %", 100.0 * report.accuracy())}</strong>
                {format!(
                    " accuracy · {} of {} right · latency p50 {:.1} ms, p99 {:.1} ms · {:.1} s",
                    report.correct, report.images, report.latency_p50_ms, report.latency_p99_ms, report.seconds
                )}
            </p>
            <div class="two-columns">
                <figure>
                    <figcaption>"Confusion matrix (rows: truth, columns: prediction)"</figcaption>
                    <table class="confusion">
                        <thead><tr><th></th>{classes.iter().map(|c| view! { <th title=c.clone()>{c.clone()}</th> }).collect_view()}</tr></thead>
                        <tbody>
                            {report.confusion.iter().enumerate().map(|(i, row)| view! {
                                <tr>
                                    <th title=classes[i].clone()>{classes[i].clone()}</th>
                                    {row.iter().enumerate().map(|(j, n)| {
                                        let alpha = f64::from(*n) / f64::from(max_cell);
                                        let class = if i == j { "cell right" } else { "cell wrong" };
                                        view! { <td class=class style=format!("--alpha: {alpha:.2}")>{*n}</td> }
                                    }).collect_view()}
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </figure>
                <figure>
                    <figcaption>"Latency histogram"</figcaption>
                    <div class="histogram">
                        {report.latency_bins_ms.iter().filter(|b| b.1 > 0 || b.0 > 0.0).map(|(upper, n)| {
                            let label = if *upper < 0.0 { "more".to_string() } else { format!("≤ {upper} ms") };
                            view! {
                                <div class="histogram-row">
                                    <span class="bar-label">{label}</span>
                                    <span class="bar"><span class="bar-fill" style=format!("width: {:.1}%", 100.0 * f64::from(*n) / f64::from(max_bin))></span></span>
                                    <span class="bar-value">{*n}</span>
                                </div>
                            }
                        }).collect_view()}
                    </div>
                </figure>
            </div>
            {(!report.wrong.is_empty()).then(|| view! {
                <h3 id="wrong-heading">{if report.wrong_total as usize > report.wrong.len() {
                    format!("Got wrong: {} images (the first {} shown)", report.wrong_total, report.wrong.len())
                } else {
                    format!("Got wrong: {} images", report.wrong.len())
                }}</h3>
                <div class="gallery" id="wrong-images">
                    {report.wrong.iter().map(|w| view! {
                        <figure class="thumb" title=w.path.clone()>
                            <img src=w.thumbnail.clone() alt=w.path.clone()/>
                            <figcaption>
                                <span class="muted">{format!("is {}", w.truth)}</span><br/>
                                {format!("said {} ({:.0} %)", w.predicted, 100.0 * w.probability)}
                            </figcaption>
                        </figure>
                    }).collect_view()}
                </div>
            })}
            {(!failed.is_empty()).then(|| view! {
                <details class="skipped">
                    <summary>{format!("{} images failed", failed.len())}</summary>
                    <ul>{failed.into_iter().map(|(p, e)| view! { <li><code>{p}</code>": "{e}</li> }).collect_view()}</ul>
                </details>
            })}
        </div>
    }
}

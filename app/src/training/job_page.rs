//! One local job: a live progress bar, loss and accuracy charts, the log
//! tail, Cancel, the dataset report and the artifact. Polls every second
//! while the job is queued or running.

use super::dataset_view::DatasetReportView;
use crate::components::{duration, percent, Card};
use super::{get_local_job, CancelLocalJob, JobStatus, LocalJobDetail};
use crate::components::chart::{LineChart, Series};
use crate::components::poll::follow;
use crate::components::{short_time, Badge, ConfirmButton, DataTable, ErrorPanel, Loaded, PageHeader};
use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_params_map};

#[component]
pub fn LocalJobPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|v| v.parse::<i64>().ok()).unwrap_or(-1);
    let tick = RwSignal::new(0u32);
    let cancel = ServerAction::<CancelLocalJob>::new();
    let job = Resource::new(move || (id(), tick.get(), cancel.version().get()), |(id, _, _)| get_local_job(id));
    follow(job, tick, std::time::Duration::from_secs(1), |j: &LocalJobDetail| !j.summary.status.is_terminal());
    view! {
        <PageHeader title="Local training job">
            <A href="/training" attr:class="btn">"← All training"</A>
            <A href=move || format!("/training?from_local={}", id()) attr:class="btn" attr:id="run-on-sagemaker">"Run this spec on SageMaker"</A>
        </PageHeader>
        {move || cancel.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error/> })}
        <Loaded resource=job ok=move |detail| view! { <JobView detail cancel/> }/>
    }
}

#[component]
fn JobView(detail: LocalJobDetail, cancel: ServerAction<CancelLocalJob>) -> impl IntoView {
    let s = detail.summary.clone();
    let p = s.progress.clone();
    let status = s.status;
    let fraction = if status == JobStatus::Completed { 1.0 } else { p.fraction() };
    let id = s.id;
    let progress_text = match status {
        JobStatus::Queued => "Waiting for the worker".to_string(),
        JobStatus::Running => {
            let mut parts = vec![format!("Epoch {}/{}", p.epoch, p.epochs)];
            if p.phase == "train" {
                parts.push(format!("step {}/{}", p.step, p.steps_per_epoch));
            } else if !p.phase.is_empty() {
                parts.push(format!("{} pass", if p.phase == "valid" { "validation" } else { "test" }));
            }
            if let Some(r) = p.images_per_s {
                parts.push(format!("{r:.0} images/s"));
            }
            if let Some(eta) = p.eta_seconds {
                parts.push(format!("about {} left", duration(eta)));
            }
            parts.join(" · ")
        }
        _ => format!("{} after {} epoch{}", status, detail.epochs.len(), if detail.epochs.len() == 1 { "" } else { "s" }),
    };
    let epochs = &detail.epochs;
    let loss = vec![
        Series { name: "train".into(), class: "series-a", points: epochs.iter().map(|e| (f64::from(e.epoch), e.train_loss)).collect() },
        Series { name: "valid".into(), class: "series-b", points: epochs.iter().map(|e| (f64::from(e.epoch), e.valid_loss)).collect() },
    ];
    let accuracy = vec![
        Series { name: "train".into(), class: "series-a", points: epochs.iter().map(|e| (f64::from(e.epoch), e.train_accuracy)).collect() },
        Series { name: "valid".into(), class: "series-b", points: epochs.iter().map(|e| (f64::from(e.epoch), e.valid_accuracy)).collect() },
    ];
    let steps = vec![Series { name: "train".into(), class: "series-a", points: detail.steps.iter().map(|p| (p.step as f64, p.loss)).collect() }];
    let spec = detail.spec.clone();
    let pending = cancel.pending();
    view! {
        <section class="card" id="job" data-status=status.as_str()>
            <header>
                <h2>{format!("#{} {}", s.id, s.name)}</h2>
                <Badge text=status.as_str() tone=status.tone()/>
                <span class="spacer"></span>
                {status.can_cancel().then(|| view! {
                    <ConfirmButton
                        label="Cancel"
                        question="Cancel this job? It stops after the current step; its checkpoints are kept."
                        on_confirm=Callback::new(move |_| { cancel.dispatch(CancelLocalJob { id }); })
                        needs="training/local/cancel"
                        pending
                        danger=true
                    />
                })}
            </header>
            <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow=format!("{:.0}", fraction * 100.0)>
                <div class=format!("progress-bar progress-{}", status.tone()) style=format!("width: {:.1}%", fraction * 100.0)></div>
            </div>
            <p class="progress-text" id="progress-text">{progress_text}</p>
            {s.message.clone().map(|m| view! { <p class=if status == JobStatus::Cancelled { "notice" } else { "error-panel" }>{m}</p> })}
            <dl class="grid">
                <dt>"Model"</dt><dd>{format!("{} · {} px · batch {} · Adam lr {}", spec.architecture.label(), spec.image_size, spec.batch_size, spec.learning_rate)}</dd>
                <dt>"Dataset"</dt><dd><code>{spec.dataset.clone()}</code></dd>
                <dt>"Augmentation"</dt><dd id="augmentation">{spec.augmentation.describe()}</dd>
                <dt>"Early stopping"</dt><dd>{if spec.patience == 0 { "off".to_string() } else { format!("after {} epochs without a better validation loss", spec.patience) }}</dd>
                <dt>"Backbone"</dt><dd>{match (&spec.backbone_weights, spec.freeze_backbone) {
                    (Some(w), true) => format!("loaded from {w}, frozen"),
                    (Some(w), false) => format!("loaded from {w}, fine-tuned"),
                    (None, _) => "random initialisation".to_string(),
                }}</dd>
                <dt>"Device"</dt><dd>{detail.device.clone().unwrap_or_else(|| "—".into())}</dd>
                <dt>"Created"</dt><dd>{short_time(&s.created_at)}</dd>
                <dt>"Finished"</dt><dd>{s.finished_at.as_deref().map(short_time).unwrap_or_else(|| "—".into())}</dd>
            </dl>
        </section>
        {detail.artifact.clone().map(|a| view! {
            <section class="card artifact" id="artifact">
                <h2>"Artifact"</h2>
                <p class="big-number"><span id="test-accuracy">{percent(a.test_accuracy)}</span>" test accuracy"</p>
                <p class="muted">{format!("Test loss {:.4}, weights of epoch {}, {} classes: {}", a.test_loss, a.best_epoch, a.classes.len(), a.classes.join(", "))}</p>
                <p><code>{a.dir.clone()}</code></p>
                <ul class="files">{a.files.iter().map(|(name, size)| view! { <li><code>{name.clone()}</code>{format!(" · {:.1} kB", *size as f64 / 1000.0)}</li> }).collect_view()}</ul>
            </section>
        })}
        <section class="charts">
            <LineChart title="Loss per epoch" series=loss x_label="epoch"/>
            <LineChart title="Accuracy per epoch" series=accuracy x_label="epoch" percent=true/>
            <LineChart title="Training loss per step" series=steps x_label="step"/>
        </section>
        {(!detail.epochs.is_empty()).then(|| view! {
            <Card title="Epochs">
                <DataTable id="epochs" compact=true headers=&["Epoch", "Train loss", "Train acc.", "Valid loss", "Valid acc.", "Time", "Images/s"]>
                    {detail.epochs.iter().map(|e| view! {
                        <tr><td>{e.epoch}</td><td>{format!("{:.4}", e.train_loss)}</td><td>{percent(e.train_accuracy)}</td>
                            <td>{format!("{:.4}", e.valid_loss)}</td><td>{percent(e.valid_accuracy)}</td>
                            <td>{duration(e.seconds)}</td><td>{format!("{:.0}", e.images_per_s)}</td></tr>
                    }).collect_view()}
                </DataTable>
            </Card>
        })}
        <Card title="Log">
            <pre class="log" id="log">{detail.logs.iter().map(|l| format!("{}  {}\n", &l.at.get(11..19).unwrap_or(""), l.line)).collect::<String>()}</pre>
        </Card>
        {detail.dataset.clone().map(|report| view! {
            <Card title="Dataset check"><DatasetReportView report/></Card>
        })}
    }
}

#[cfg(test)]
mod tests {
}

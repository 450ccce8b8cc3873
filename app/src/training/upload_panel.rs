//! "Datasets in S3" on the Training page: the upload form and every upload
//! with its progress bar (bytes/s, time left), cancel, and the channels a
//! SageMaker job reads it from.

use crate::components::duration;
use super::upload::{cancel_dataset_upload, list_dataset_uploads, start_dataset_upload, DatasetUpload, UploadSpec};
use crate::components::{short_time, Badge, Card, ConfirmButton, ErrorPanel, Loading, TextField};
use leptos::prelude::*;

fn bytes(n: u64) -> String {
    match n {
        0..=9_999 => format!("{n} B"),
        10_000..=9_999_999 => format!("{:.1} KB", n as f64 / 1e3),
        10_000_000..=9_999_999_999 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.2} GB", n as f64 / 1e9),
    }
}

/// Made with the page (not inside a Suspense), so its resources are created
/// in the same order on the server and in the browser.
#[component]
pub fn UploadPanel(defaults: Resource<Result<super::TrainingDefaults, crate::ApiError>>) -> impl IntoView {
    let refresh = RwSignal::new(0u32);
    let uploads = Resource::new(move || refresh.get(), |_| list_dataset_uploads());
    // While one runs, look again every second.
    crate::components::poll::follow(uploads, refresh, std::time::Duration::from_secs(1), |l: &Vec<_>| {
        l.iter().any(|u: &DatasetUpload| !u.status.is_terminal())
    });
    // The demo set's folder until the operator types another.
    let dataset = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(Ok(d)) = defaults.get() {
            if dataset.get_untracked().is_empty() {
                dataset.set(d.demo_path);
            }
        }
    });
    let destination = RwSignal::new(String::new());
    let start = Action::new(|spec: &UploadSpec| start_dataset_upload(spec.clone()));
    Effect::new(move |_| {
        if start.value().get().is_some_and(|r| r.is_ok()) {
            refresh.update(|n| *n += 1);
        }
    });
    view! {
        <Card title="Datasets in S3" id="dataset-uploads"
            note=concat!(
                "A SageMaker job reads its images from S3. This copies a checked dataset (the demo set too) under an S3 prefix, keeping ",
                "train/, valid/ and test/: large files in parts, eight files at once, files already there with the same checksum skipped. ",
                "It carries on after a restart.",
            )>
            <form class="form-grid" on:submit=move |ev| {
                ev.prevent_default();
                start.dispatch(UploadSpec { dataset: dataset.get(), destination: destination.get() });
            }>
                <TextField label="Dataset folder" name="upload_dataset" wide=true value=dataset/>
                <TextField label="To (s3://bucket/prefix)" name="upload_destination" placeholder="s3://my-bucket/datasets/shapes" wide=true value=destination/>
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary" id="start-upload" title=crate::auth::needs_title("training/uploads/start")
                        disabled=move || start.pending().get() || !crate::auth::allowed("training/uploads/start")>
                        {move || if start.pending().get() { "Checking the dataset…" } else { "Upload to S3" }}
                    </button>
                </div>
            </form>
            {move || start.value().get().and_then(Result::err).map(|error| view! { <div id="upload-error"><ErrorPanel error/></div> })}
            <Transition fallback=|| view! { <Loading/> }>
                {move || Suspend::new(async move {
                    match uploads.await {
                        Ok(list) if list.is_empty() => view! { <p class="empty">"No dataset uploaded from this console yet."</p> }.into_any(),
                        Ok(list) => view! {
                            <div id="upload-list">
                                {list.into_iter().map(|u| view! { <UploadRow u on_change=Callback::new(move |_| refresh.update(|n| *n += 1))/> }).collect_view()}
                            </div>
                        }.into_any(),
                        Err(error) => view! { <ErrorPanel error/> }.into_any(),
                    }
                })}
            </Transition>
        </Card>
    }
}

#[component]
fn UploadRow(u: DatasetUpload, on_change: Callback<()>) -> impl IntoView {
    let cancel = Action::new(|id: &i64| cancel_dataset_upload(*id));
    Effect::new(move |_| {
        if cancel.value().get().is_some() {
            on_change.run(());
        }
    });
    let id = u.id;
    let percent = u.fraction() * 100.0;
    let pace = match (u.bytes_per_s, u.eta_seconds) {
        (Some(rate), Some(eta)) => format!(" · {}/s · {} left", bytes(rate as u64), duration(eta)),
        (Some(rate), None) => format!(" · {}/s", bytes(rate as u64)),
        _ => String::new(),
    };
    let counts = format!(
        "{} of {} files sent ({}), {} already there and skipped ({}), of {}{pace}",
        u.files_uploaded,
        u.files_total,
        bytes(u.bytes_uploaded),
        u.files_skipped,
        bytes(u.bytes_skipped),
        bytes(u.bytes_total)
    );
    let channels = u.channels();
    let running = !u.status.is_terminal();
    view! {
        <div class="upload" data-upload=id data-status=u.status.as_str()>
            <p>
                <Badge text=u.status.as_str() tone=u.status.tone()/>
                " "<code>{u.dataset.clone()}</code>" → "<code>{u.destination.clone()}</code>
                <span class="muted">{format!(" · #{id} by {} · {}", u.by, short_time(&u.created_at))}</span>
            </p>
            <div class="progress"><div class=format!("progress-bar progress-{}", u.status.tone()) style=format!("width: {percent:.1}%")></div></div>
            <p class="progress-text upload-counts">{counts}</p>
            {u.current.clone().filter(|_| running).map(|c| view! { <p class="muted">"Sending "<code>{c}</code></p> })}
            {u.message.clone().map(|m| view! { <p class="muted upload-message">{m}</p> })}
            {running.then(|| view! {
                <ConfirmButton
                    label="Cancel"
                    question="Cancel this upload? Files already sent stay in S3; parts of unfinished files are removed."
                    on_confirm=Callback::new(move |_| { cancel.dispatch(id); })
                    needs="training/uploads/cancel"
                    pending=cancel.pending()
                    danger=true
                />
            })}
            {(u.status == super::upload::UploadStatus::Completed).then(|| view! {
                <p class="muted">"SageMaker channels: "{channels.into_iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join(" · ")}</p>
            })}
        </div>
    }
}

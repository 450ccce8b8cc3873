//! The Test panel: drop or pick an image, or paste a URL; the browser posts
//! it to the endpoint's invoke route exactly as a client would (the file's
//! own bytes and type) and shows the top-5 classes as probability bars, the
//! latency split and, on request, the raw response.

use super::{Backend, VerboseAnswer};
use crate::components::ErrorPanel;
use crate::ApiError;
use leptos::prelude::*;

// Only the browser sends, so the server build never makes the later states.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
#[derive(Clone, Debug, PartialEq)]
enum State {
    Idle,
    Sending,
    Done(VerboseAnswer),
    Failed(ApiError),
}

/// What the browser sends.
#[cfg(feature = "hydrate")]
enum Upload {
    File(web_sys::File),
    Url(String),
}

#[cfg(feature = "hydrate")]
async fn send(path: String, upload: Upload) -> Result<VerboseAnswer, ApiError> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    let js = |e: wasm_bindgen::JsValue| ApiError::Upstream(format!("the browser could not send the request: {e:?}"));
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    let headers = web_sys::Headers::new().map_err(js)?;
    match &upload {
        Upload::File(file) => {
            let kind = file.type_();
            headers.set("Content-Type", if kind.is_empty() { "application/x-image" } else { &kind }).map_err(js)?;
            init.set_body(file.as_ref());
        }
        Upload::Url(url) => {
            headers.set("Content-Type", "application/json").map_err(js)?;
            let body = serde_json::json!({ "url": url }).to_string();
            init.set_body(&wasm_bindgen::JsValue::from_str(&body));
        }
    }
    if let Some(token) = crate::csrf::token() {
        headers.set(crate::csrf::HEADER, &token).map_err(js)?;
    }
    init.set_headers(&headers);
    let window = web_sys::window().ok_or_else(|| ApiError::Internal("no window".into()))?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str_and_init(&format!("{path}?top_k=5"), &init))
        .await
        .map_err(js)?
        .dyn_into()
        .map_err(js)?;
    let text = JsFuture::from(response.text().map_err(js)?).await.map_err(js)?.as_string().unwrap_or_default();
    if response.ok() {
        serde_json::from_str(&text).map_err(|e| ApiError::Upstream(format!("the answer could not be read ({e}): {text}")))
    } else {
        // Local endpoints answer in SageMaker's error shape, with the
        // console's own kind and words beside it (`kind`, `detail`).
        let parsed = serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| {
            let words = v.get("detail").or_else(|| v.get("message"))?.as_str()?.to_string();
            serde_json::from_value::<ApiError>(serde_json::json!({ "kind": v.get("kind")?, "message": words })).ok()
        });
        Err(parsed.unwrap_or_else(|| ApiError::Upstream(format!("HTTP {}: {text}", response.status()))))
    }
}

#[component]
pub fn TestPanel(backend: Backend, name: String) -> impl IntoView {
    let path = StoredValue::new(backend.invoke_path(&name));
    let state = RwSignal::new(State::Idle);
    let preview = RwSignal::new(None::<String>);
    let file_name = RwSignal::new(String::new());
    let url = RwSignal::new(String::new());
    let show_raw = RwSignal::new(false);
    let dragging = RwSignal::new(false);
    let _ = (path, preview, file_name);

    #[cfg(feature = "hydrate")]
    let submit = move |upload: Upload| {
        if let Upload::File(file) = &upload {
            file_name.set(format!("{} · {:.1} KB · {}", file.name(), file.size() / 1000.0, file.type_()));
            if let Some(old) = preview.get_untracked() {
                let _ = web_sys::Url::revoke_object_url(&old);
            }
            preview.set(web_sys::Url::create_object_url_with_blob(file).ok());
        } else if let Upload::Url(u) = &upload {
            file_name.set(u.clone());
            preview.set(Some(u.clone()));
        }
        state.set(State::Sending);
        leptos::task::spawn_local(async move {
            state.set(match send(path.get_value(), upload).await {
                Ok(answer) => State::Done(answer),
                Err(e) => State::Failed(e),
            });
        });
    };

    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        #[cfg(feature = "hydrate")]
        if let Some(file) = ev.data_transfer().and_then(|d| d.files()).and_then(|f| f.get(0)) {
            submit(Upload::File(file));
        }
    };
    let on_pick = move |ev: leptos::ev::Event| {
        let _ = &ev;
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let input = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok());
            if let Some(file) = input.as_ref().and_then(|i| i.files()).and_then(|f| f.get(0)) {
                submit(Upload::File(file));
            }
            if let Some(i) = input {
                // Picking the same file again should send it again.
                i.set_value("");
            }
        }
    };
    let on_url = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let u = url.get_untracked().trim().to_string();
        if u.is_empty() {
            state.set(State::Failed(ApiError::Invalid("paste an image URL first".into())));
            return;
        }
        #[cfg(feature = "hydrate")]
        submit(Upload::Url(u));
    };

    view! {
        <div class="test-panel" id="test-panel" data-state=move || match state.get() {
            State::Idle => "idle",
            State::Sending => "sending",
            State::Done(_) => "done",
            State::Failed(_) => "failed",
        }>
            <label
                class=move || if dragging.get() { "dropzone dragging" } else { "dropzone" }
                on:dragover=move |ev: leptos::ev::DragEvent| { ev.prevent_default(); dragging.set(true); }
                on:dragleave=move |_| dragging.set(false)
                on:drop=on_drop
            >
                <input type="file" id="test-file" accept="image/jpeg,image/png" on:change=on_pick/>
                <span class="dropzone-text">
                    <strong>"Drop an image here"</strong>" or click to pick one (JPEG or PNG, up to 6 MB)"
                </span>
            </label>
            <form class="with-button url-form" on:submit=on_url>
                <input name="url" placeholder="…or paste an image URL (https://…)" prop:value=move || url.get() on:input=move |ev| url.set(event_target_value(&ev))/>
                <button type="submit" class="btn">"Invoke with URL"</button>
            </form>
            <div class="test-result">
                {move || preview.get().map(|src| view! { <img class="test-image" src=src alt="The image sent"/> })}
                <div class="test-answer">
                    <p class="muted">{move || file_name.get()}</p>
                    {move || match state.get() {
                        State::Idle => view! { <p class="muted">"The answer appears here: the top 5 classes and where the time went."</p> }.into_any(),
                        State::Sending => view! { <p class="loading" aria-busy="true">"Invoking…"</p> }.into_any(),
                        State::Failed(error) => view! { <ErrorPanel error/> }.into_any(),
                        State::Done(answer) => view! { <Answer answer show_raw/> }.into_any(),
                    }}
                </div>
            </div>
        </div>
    }
}

fn ms(v: f64) -> String {
    if v >= 100.0 { format!("{v:.0} ms") } else { format!("{v:.2} ms") }
}

#[component]
fn Answer(answer: VerboseAnswer, show_raw: RwSignal<bool>) -> impl IntoView {
    let raw = answer.raw.clone();
    let split = match (answer.model_latency_ms, answer.overhead_latency_ms) {
        (Some(m), Some(o)) => {
            let total = answer.total_latency_ms.max(1e-9);
            view! {
                <div class="latency-split" title="Model: decode, resize and forward. Overhead: reading the request, queueing, batching, answering.">
                    <div class="latency-model" style=format!("width: {:.1}%", 100.0 * m / total)></div>
                    <div class="latency-overhead" style=format!("width: {:.1}%", 100.0 * o / total)></div>
                </div>
                <p class="latency" id="latency">
                    {format!("Total {} · model {} · overhead {}", ms(answer.total_latency_ms), ms(m), ms(o))}
                    {answer.batch_size.filter(|b| *b > 1).map(|b| format!(" · shared a batch of {b}"))}
                </p>
            }
            .into_any()
        }
        _ => view! {
            <p class="latency" id="latency">
                {format!("Total {} (through the console and sagemaker-runtime)", ms(answer.total_latency_ms))}
                <br/><span class="muted">"SageMaker reports model and overhead latency as CloudWatch metrics, not per request: see the charts."</span>
            </p>
        }
        .into_any(),
    };
    let facts = answer.image.clone().map(|i| format!("{} {}×{} {}, {:.1} KB", i.format, i.width, i.height, i.color, i.bytes as f64 / 1000.0));
    view! {
        <ol class="bars" id="predictions">
            {answer.predictions.iter().map(|p| {
                let pct = 100.0 * p.probability;
                view! {
                    <li class="bar-row" data-class=p.class.clone() data-probability=format!("{:.4}", p.probability)>
                        <span class="bar-label">{p.class.clone()}</span>
                        <span class="bar"><span class="bar-fill" style=format!("width: {pct:.1}%")></span></span>
                        <span class="bar-value">{format!("{pct:.1} %")}</span>
                    </li>
                }
            }).collect_view()}
        </ol>
        {split}
        {facts.map(|f| view! { <p class="muted">{f}</p> })}
        <label class="checkbox">
            <input type="checkbox" id="show-raw" prop:checked=move || show_raw.get() on:change=move |ev| show_raw.set(event_target_checked(&ev))/>
            " Raw response"
        </label>
        {move || show_raw.get().then(|| view! { <pre class="raw" id="raw-response">{raw.clone()}</pre> })}
    }
}

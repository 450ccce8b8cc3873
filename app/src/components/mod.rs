//! Small building blocks shared by the pages.

pub mod chart;
pub mod poll;

use crate::ApiError;
use leptos::prelude::*;

/// An error in words: a heading for its kind and the message as the server gave it.
#[component]
pub fn ErrorPanel(error: ApiError) -> impl IntoView {
    view! {
        <div class="error-panel" role="alert" data-status=error.status()>
            <strong>{error.title()}</strong>
            <p>{error.message().to_string()}</p>
        </div>
    }
}

/// A coloured status word. `tone` is one of ok, busy, idle, bad.
#[component]
pub fn Badge(#[prop(into)] text: String, tone: &'static str) -> impl IntoView {
    view! { <span class=format!("badge badge-{tone}")>{text}</span> }
}

/// A button that asks before it acts: the first click shows the question with
/// a confirm and a cancel button; only the confirm runs `on_confirm`.
#[component]
pub fn ConfirmButton(
    #[prop(into)] label: String,
    #[prop(into)] question: String,
    on_confirm: Callback<()>,
    #[prop(into)] pending: Signal<bool>,
    #[prop(optional)] danger: bool,
    /// The server function it calls: greyed out for a role that may not.
    #[prop(optional)]
    needs: Option<&'static str>,
) -> impl IntoView {
    let asking = RwSignal::new(false);
    let allowed = move || needs.is_none_or(crate::auth::allowed);
    let title = move || needs.and_then(|n| crate::auth::needs_title(n)());
    let label = StoredValue::new(label);
    let question = StoredValue::new(question);
    let confirm_class = if danger { "btn btn-danger" } else { "btn btn-primary" };
    view! {
        <Show
            when=move || asking.get()
            fallback=move || {
                view! {
                    <button
                        class="btn"
                        title=title
                        disabled=move || pending.get() || !allowed()
                        on:click=move |_| asking.set(true)
                    >
                        {move || if pending.get() { "Working…".to_string() } else { label.get_value() }}
                    </button>
                }
            }
        >
            <span class="confirm" role="group">
                <span class="confirm-question">{question.get_value()}</span>
                <button
                    class=confirm_class
                    on:click=move |_| {
                        asking.set(false);
                        on_confirm.run(());
                    }
                >
                    {format!("Yes, {}", label.get_value().to_lowercase())}
                </button>
                <button class="btn" on:click=move |_| asking.set(false)>
                    "Cancel"
                </button>
            </span>
        </Show>
    }
}

/// The page's title row; with `refresh`, a Refresh button that bumps it
/// (the page's resources read it), before the page's own actions; with
/// `lede`, the sentence under the title that says what the page is for.
#[component]
pub fn PageHeader(
    #[prop(into)] title: String,
    #[prop(optional)] refresh: Option<RwSignal<u32>>,
    #[prop(optional, into)] lede: Option<&'static str>,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <leptos_meta::Title text=title.clone()/>
        <div class="page-header">
            <h1>{title}</h1>
            <div class="page-actions">{refresh.map(|tick| view! { <RefreshButton tick/> })}{children.map(|c| c())}</div>
        </div>
        {lede.map(|text| view! { <p class="lede">{text}</p> })}
    }
}

/// A titled panel of a page: `<section class="card">` with its heading, the
/// muted note under it when there is one, then the children. Panels whose
/// heading carries more than words (a badge, a picker) write the section out.
#[component]
pub fn Card(
    title: &'static str,
    #[prop(optional)] id: Option<&'static str>,
    #[prop(optional)] note: Option<&'static str>,
    children: Children,
) -> impl IntoView {
    view! {
        <section class="card" id=id>
            <h2>{title}</h2>
            {note.map(|text| view! { <p class="muted">{text}</p> })}
            {children()}
        </section>
    }
}

/// The page header's "Refresh": bumps `tick`, which the page's resources read.
#[component]
pub fn RefreshButton(tick: RwSignal<u32>) -> impl IntoView {
    view! { <button class="btn" on:click=move |_| tick.update(|n| *n += 1)>"Refresh"</button> }
}

#[component]
pub fn Loading(#[prop(into, default = "Loading…".to_string())] text: String) -> impl IntoView {
    view! { <p class="loading" aria-busy="true">{text}</p> }
}

/// A server function's answer where it is shown: `loading` while it first
/// loads (on a reload the previous view stays until the new one is ready: a
/// `Transition`), its error as an `ErrorPanel`, otherwise `ok(value)`. The
/// one way a page shows a `Resource<Result<T, ApiError>>`; write the
/// `Transition` by hand only where the view needs more than one resource.
#[component]
pub fn Loaded<T, V, F>(
    resource: Resource<Result<T, ApiError>>,
    #[prop(into, default = "Loading…".to_string())] loading: String,
    ok: F,
) -> impl IntoView
where
    T: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    V: IntoView + 'static,
    F: Fn(T) -> V + Clone + Send + Sync + 'static,
{
    view! {
        <Transition fallback=move || view! { <Loading text=loading.clone()/> }>
            {move || {
                let ok = ok.clone();
                Suspend::new(async move {
                    match resource.await {
                        Ok(value) => ok(value).into_any(),
                        Err(error) => view! { <ErrorPanel error/> }.into_any(),
                    }
                })
            }}
        </Transition>
    }
}

/// A form's submit once its fields are read: a problem goes to `problem`
/// (the form shows it) and nothing is sent; a good request is dispatched.
pub fn dispatch_or_show<I, O>(action: Action<I, O>, problem: RwSignal<Option<ApiError>>, input: Result<I, ApiError>)
where
    I: Send + Sync + 'static,
    O: Send + Sync + 'static,
{
    match input {
        Ok(input) => {
            problem.set(None);
            action.dispatch(input);
        }
        Err(e) => problem.set(Some(e)),
    }
}

/// Rows under a header row: the one way a list or a set of facts is
/// tabulated. `headers` are the column titles ("" over a column of buttons);
/// the children are the rows.
#[component]
pub fn DataTable(
    #[prop(optional)] id: Option<&'static str>,
    #[prop(optional)] compact: bool,
    headers: &'static [&'static str],
    children: Children,
) -> impl IntoView {
    view! {
        <table class=if compact { "table compact" } else { "table" } id=id>
            <thead><tr>{headers.iter().map(|h| view! { <th>{*h}</th> }).collect_view()}</tr></thead>
            <tbody>{children()}</tbody>
        </table>
    }
}

/// A labelled text input bound to a signal that holds its text: the form
/// field of every page. `wide` spans the form's grid; `children` (an error
/// line, a datalist) follow the input inside the label.
#[component]
pub fn TextField(
    label: &'static str,
    value: RwSignal<String>,
    #[prop(optional)] name: Option<&'static str>,
    #[prop(optional)] id: Option<&'static str>,
    #[prop(optional)] placeholder: Option<&'static str>,
    #[prop(optional)] inputmode: Option<&'static str>,
    #[prop(optional)] list: Option<&'static str>,
    #[prop(optional)] disabled: bool,
    #[prop(optional)] wide: bool,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <label class=if wide { "field wide" } else { "field" }>
            <span>{label}</span>
            <input
                name=name
                id=id
                placeholder=placeholder
                inputmode=inputmode
                list=list
                disabled=disabled
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
            />
            {children.map(|c| c())}
        </label>
    }
}

/// A [`TextField`] for a whole number (parsed on submit with [`parse_u32`],
/// so a half-typed value is never lost).
pub fn number_input(label: &'static str, name: &'static str, value: RwSignal<String>) -> impl IntoView {
    view! { <TextField label name inputmode="numeric" value/> }
}

/// The text of a [`number_input`] as a whole number, or an error naming the field.
pub fn parse_u32(label: &str, text: &str) -> Result<u32, ApiError> {
    text.trim().parse().map_err(|_| ApiError::Invalid(format!("{label} must be a whole number, not {text:?}")))
}

/// "2026-11-22T03:14:05.123Z" → "2026-11-22 03:14 UTC"; other text is shown as it is.
pub fn short_time(rfc3339: &str) -> String {
    let bytes = rfc3339.as_bytes();
    let looks_like_utc = rfc3339.len() >= 16
        && bytes[4] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && rfc3339.ends_with('Z');
    if looks_like_utc {
        format!("{} {} UTC", &rfc3339[..10], &rfc3339[11..16])
    } else {
        rfc3339.to_string()
    }
}

/// Unix seconds as a UTC clock time, "14:05" (the same on the server and
/// in the browser, so hydration agrees).
pub fn clock(unix: i64) -> String {
    let day = unix.rem_euclid(86_400);
    format!("{:02}:{:02}", day / 3600, day % 3600 / 60)
}

/// Unix seconds as a UTC date and time, "2026-11-22 14:05".
pub fn date_time(unix: i64) -> String {
    let (y, m, d) = crate::calendar::civil_from_days(unix.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02} {}", clock(unix))
}

/// "95 s" → "1 min 35 s".
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// 12400 → "12,400".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What a page shows of what matches: "50 of 12,400 jobs".
pub fn count_of(shown: usize, total: u64, one: &str, many: &str) -> String {
    format!("{shown} of {} {}", thousands(total), if total == 1 { one } else { many })
}

/// A fraction as a percentage with one decimal: 0.9234 → "92.3 %".
pub fn percent(v: f64) -> String {
    format!("{:.1} %", v * 100.0)
}

pub fn or_dash(value: Option<String>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or_else(|| "—".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_in_thousands() {
        assert_eq!(thousands(12400), "12,400");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(count_of(50, 12400, "job", "jobs"), "50 of 12,400 jobs");
        assert_eq!(count_of(1, 1, "job", "jobs"), "1 of 1 job");
        assert_eq!(count_of(0, 0, "change", "changes"), "0 of 0 changes");
    }

    #[test]
    fn short_time_trims_seconds_and_marks_utc() {
        assert_eq!(short_time("2026-11-22T03:14:05.123Z"), "2026-11-22 03:14 UTC");
        assert_eq!(short_time("2026-11-22T03:14:05Z"), "2026-11-22 03:14 UTC");
    }

    #[test]
    fn short_time_leaves_other_text_alone() {
        assert_eq!(short_time("yesterday"), "yesterday");
        assert_eq!(short_time("2026-11-22T03:14:05+02:00"), "2026-11-22T03:14:05+02:00");
    }

    #[test]
    fn clock_and_date_time_are_utc() {
        assert_eq!(clock(0), "00:00");
        assert_eq!(clock(1_764_600_300), "14:45");
        assert_eq!(date_time(1_764_600_300), "2025-12-01 14:45");
        assert_eq!(date_time(951_782_400), "2000-02-29 00:00");
        assert_eq!(date_time(-60), "1969-12-31 23:59");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(5.4), "5 s");
        assert_eq!(duration(95.0), "1 min 35 s");
        assert_eq!(duration(7260.0), "2 h 1 min");
        assert_eq!(duration(-3.0), "0 s");
    }

    #[test]
    fn or_dash_replaces_missing_and_empty() {
        assert_eq!(or_dash(None), "—");
        assert_eq!(or_dash(Some(String::new())), "—");
        assert_eq!(or_dash(Some("x".into())), "x");
    }
}

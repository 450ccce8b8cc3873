use super::{recent_changes, AwsStatus, BackendsReport};
use crate::journal::ChangeTable;
use crate::components::{Badge, Loaded, PageHeader};
use crate::shell::StatusResource;
use leptos::prelude::*;

#[component]
pub fn OverviewPage() -> impl IntoView {
    let status = expect_context::<StatusResource>();
    let changes = Resource::new(|| (), |_| recent_changes(10));
    view! {
        <PageHeader title="Overview"
            lede=concat!(
                "Sagedeck operates image-classification models on this machine (the local runtime) and on AWS SageMaker. ",
                "Here is what is live right now.",
            )>
            <button class="btn" on:click=move |_| { status.0.refetch(); changes.refetch(); }>"Refresh"</button>
        </PageHeader>
        <Loaded resource=status.0 loading="Checking backends…" ok=move |report| view! { <Backends report/> }/>
        <h2>"Recent changes"</h2>
        <Loaded resource=changes ok=move |list| view! { <ChangeTable changes=list on_reverted=Callback::new(move |_| changes.refetch())/> }/>
    }
}

#[component]
fn Backends(report: BackendsReport) -> impl IntoView {
    let local = report.local;
    let store = report.store;
    let check = match &local.self_check {
        Ok(ms) => format!("ok ({ms:.2} ms for a 256×256 matmul)"),
        Err(e) => format!("failed: {e}"),
    };
    let local_tone = if local.self_check.is_ok() { "ok" } else { "bad" };
    let device = if local.device == "cuda" {
        format!("CUDA ({} GPU{})", local.cuda_devices, if local.cuda_devices == 1 { "" } else { "s" })
    } else {
        "CPU".to_string()
    };
    view! {
        <div class="cards">
            <section class="card" id="backend-local">
                <header>
                    <h2>"Local runtime"</h2>
                    <Badge text=if local.self_check.is_ok() { "live" } else { "broken" } tone=local_tone/>
                </header>
                <p class="muted">"Embedded: training with libtorch and local endpoints, no AWS account needed."</p>
                <dl>
                    <dt>"Device"</dt><dd>{device}</dd>
                    <dt>"Threads"</dt><dd>{local.threads}</dd>
                    <dt>"MKL"</dt><dd>{if local.mkl { "yes" } else { "no" }}</dd>
                    <dt>"libtorch check"</dt><dd>{check}</dd>
                </dl>
            </section>
            <section class="card" id="backend-store">
                <header>
                    <h2>"State store"</h2>
                    <Badge text="live" tone="ok"/>
                </header>
                <p class="muted">"SQLite: job history, endpoints, the change journal."</p>
                <dl>
                    <dt>"Database"</dt><dd><code>{store.database}</code></dd>
                    <dt>"Data directory"</dt><dd><code>{store.data_dir}</code></dd>
                    <dt>"SQLite"</dt><dd>{store.sqlite_version}</dd>
                    <dt>"Journal mode"</dt><dd>{store.journal_mode}</dd>
                    <dt>"Migrations"</dt><dd>{store.migrations_applied}" applied"</dd>
                </dl>
            </section>
            <AwsCard aws=report.aws/>
        </div>
    }
}

#[component]
fn AwsCard(aws: AwsStatus) -> impl IntoView {
    let body = match aws {
        AwsStatus::Live { account, arn, region, endpoint } => view! {
            <header><h2>"AWS"</h2><Badge text="live" tone="ok"/></header>
            <p class="muted">"Reached through the standard aws-config chain; identity from STS GetCallerIdentity."</p>
            <dl>
                <dt>"Account"</dt><dd class="aws-account">{account}</dd>
                <dt>"Region"</dt><dd>{region}</dd>
                <dt>"Caller"</dt><dd><code>{arn}</code></dd>
                <dt>"Endpoint"</dt><dd>{endpoint.unwrap_or_else(|| "AWS (default endpoints)".into())}</dd>
            </dl>
        }
        .into_any(),
        AwsStatus::NotConfigured { reason } => view! {
            <header><h2>"AWS"</h2><Badge text="not configured" tone="idle"/></header>
            <p class="aws-reason">{reason}</p>
            <p class="muted">
                "Everything local works without AWS. To operate an account, provide credentials and a region the way the AWS CLI reads them "
                "(AWS_PROFILE, AWS_REGION, SSO, or AWS_ENDPOINT_URL for a test endpoint), then restart Sagedeck."
            </p>
        }
        .into_any(),
        AwsStatus::Unavailable { region, endpoint, reason } => view! {
            <header><h2>"AWS"</h2><Badge text="unavailable" tone="bad"/></header>
            <p class="aws-reason">{reason}</p>
            <dl>
                <dt>"Region"</dt><dd>{region}</dd>
                <dt>"Endpoint"</dt><dd>{endpoint.unwrap_or_else(|| "AWS (default endpoints)".into())}</dd>
            </dl>
        }
        .into_any(),
    };
    view! { <section class="card" id="backend-aws">{body}</section> }
}


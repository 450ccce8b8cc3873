//! The HTML shell, the router and the layout every page sits in.

use crate::notebooks::{NotebookDetailPage, NotebooksPage};
use crate::overview::{backend_status, AwsStatus, BackendsReport, OverviewPage};
use crate::endpoints::{EndpointPage, EndpointsPage};
use crate::journal::JournalPage;
use crate::lambda::{FunctionPage, LambdaPage};
use crate::iam::IamPage;
use crate::scaling::{ScalingEndpointPage, ScalingPage};
use crate::training::{LocalJobPage, SageMakerJobPage, TrainingPage, TuningJobPage};
use crate::ApiError;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes, A},
    path,
};

/// The backends report, fetched once by the layout and shared with the pages.
#[derive(Clone, Copy)]
pub struct StatusResource(pub Resource<Result<BackendsReport, ApiError>>);

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <AutoReload options=options.clone()/>
                // By its content-hashed name when scripts/build.sh built the site.
                <HashedStylesheet options=options.clone() id="leptos"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/notebooks", "Notebooks"),
    ("/training", "Training"),
    ("/endpoints", "Endpoints"),
    ("/scaling", "Scaling"),
    ("/lambda", "Lambda"),
    ("/iam", "IAM"),
    ("/costs", "Costs"),
    ("/journal", "Journal"),
];

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let status = StatusResource(Resource::new(|| (), |_| backend_status()));
    provide_context(status);
    crate::auth::WhoAmI::provide();
    // Effects run only in the browser: this marks the moment the page became
    // interactive, which the browser tests wait for before clicking.
    Effect::new(|_| {
        #[cfg(feature = "hydrate")]
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Title formatter=|page: String| if page.is_empty() { "Sagedeck".to_string() } else { format!("{page} · Sagedeck") }/>
        <Router>
            <div class="layout">
                <nav class="sidebar" aria-label="Main">
                    <A href="/" attr:class="brand">
                        <span class="brand-mark" aria-hidden="true">"◆"</span>
                        "Sagedeck"
                    </A>
                    <ul>
                        {NAV
                            .iter()
                            .map(|(href, label)| view! { <li><A href=*href exact=true>{*label}</A></li> })
                            .collect_view()}
                    </ul>
                </nav>
                <div class="content">
                    <header class="topbar">
                        <Transition fallback=|| view! { <span class="chip">"AWS: checking…"</span> }>
                            {move || Suspend::new(async move {
                                match status.0.await {
                                    Ok(report) => view! { <TopbarChips report/> }.into_any(),
                                    Err(e) => view! { <span class="chip chip-bad">{format!("Sagedeck server: {}", e.message())}</span> }.into_any(),
                                }
                            })}
                        </Transition>
                        <span class="topbar-account"><crate::auth::AccountChip/></span>
                    </header>
                    <main>
                        <Routes fallback=|| view! { <NotFound/> }>
                            <Route path=path!("/") view=OverviewPage/>
                            <Route path=path!("/notebooks") view=NotebooksPage/>
                            <Route path=path!("/notebooks/:name") view=NotebookDetailPage/>
                            <Route path=path!("/training") view=TrainingPage/>
                            <Route path=path!("/training/local/:id") view=LocalJobPage/>
                            <Route path=path!("/training/sagemaker/:name") view=SageMakerJobPage/>
                            <Route path=path!("/training/tuning/:name") view=TuningJobPage/>
                            <Route path=path!("/endpoints") view=EndpointsPage/>
                            <Route path=path!("/endpoints/:backend/:name") view=EndpointPage/>
                            <Route path=path!("/scaling") view=ScalingPage/>
                            <Route path=path!("/scaling/:backend/:name") view=ScalingEndpointPage/>
                            <Route path=path!("/costs") view=crate::costs::CostsPage/>
                            <Route path=path!("/journal") view=JournalPage/>
                            <Route path=path!("/lambda") view=LambdaPage/>
                            <Route path=path!("/lambda/:home/:name") view=FunctionPage/>
                            <Route path=path!("/iam") view=IamPage/>
                        </Routes>
                    </main>
                </div>
            </div>
        </Router>
    }
}

#[component]
fn TopbarChips(report: BackendsReport) -> impl IntoView {
    let aws_class = match report.aws {
        AwsStatus::Live { .. } => "chip chip-ok",
        AwsStatus::NotConfigured { .. } => "chip",
        AwsStatus::Unavailable { .. } => "chip chip-bad",
    };
    view! {
        <span class="chip chip-ok" title="The embedded runtime is always on">"Local runtime"</span>
        <span class=aws_class id="aws-chip">{report.aws.chip()}</span>
        <span class="chip" title="The address this console listens on">{report.listen}</span>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(opts) = use_context::<leptos_axum::ResponseOptions>() {
            opts.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <Title text="Not found"/>
        <h1>"Page not found"</h1>
        <p>"There is no page at this address. "<A href="/">"Back to the overview"</A></p>
    }
}

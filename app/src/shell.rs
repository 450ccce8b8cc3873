//! The HTML shell, the router and the layout every page sits in.

use crate::notebooks::{NotebookDetailPage, NotebooksPage};
use crate::overview::{backend_status, AwsStatus, BackendsReport, OverviewPage};
use crate::endpoints::{EndpointPage, EndpointsPage};
use crate::costs::CostsPage;
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
    path, Lazy, LazyRoute,
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

/// Every page is a lazy route. Its code (the page module's components, and
/// the serde and view code made for its types) leaves the main wasm for a
/// chunk of its page module's, which scripts/build.sh splits off
/// (tools/wasm-split) and the browser fetches when such a page is first shown.
/// The server still renders the whole page, and names the page's chunks in the
/// `<head>` as preloads, so a page load fetches the main module and its page's
/// chunks side by side; a later navigation fetches only what it lacks
/// (docs/benchmarks.md has the sizes per page).
///
/// One split per page module, not per page: the pages of a module share most
/// of their code, and code that several splits share becomes a chunk of its
/// own, so per-page splits made hundreds of small chunks. The split's name
/// must be given to `#[lazy]` from one place (this macro), because Leptos
/// tells splits apart by the name and the place it was written. (`paste`
/// names each route's lazy function and the preload `#[lazy]` makes for it.)
macro_rules! lazy_pages {
    ($($split:ident { $($route:ident => $page:ident),+ $(,)? })*) => {$($(
        paste::paste! {
            struct $route;

            #[leptos::lazy($split)]
            fn [<$route:snake _view>]() -> AnyView {
                $page().into_any()
            }

            impl LazyRoute for $route {
                fn data() -> Self {
                    $route
                }
                async fn view(_route: Self) -> AnyView {
                    [<$route:snake _view>]().await
                }
                // Hydration loads the route's split before it hydrates the
                // page (the router awaits this): without it, the page would
                // hydrate against a placeholder and fail.
                async fn preload() {
                    #[cfg(feature = "hydrate")]
                    [<__preload_ $route:snake _view>]().await;
                }
            }
        }
    )+)*};
}

lazy_pages! {
    overview { OverviewRoute => OverviewPage }
    notebooks { NotebooksRoute => NotebooksPage, NotebookDetailRoute => NotebookDetailPage }
    training {
        TrainingRoute => TrainingPage,
        LocalJobRoute => LocalJobPage,
        SageMakerJobRoute => SageMakerJobPage,
        TuningJobRoute => TuningJobPage,
    }
    endpoints { EndpointsRoute => EndpointsPage, EndpointRoute => EndpointPage }
    scaling { ScalingRoute => ScalingPage, ScalingEndpointRoute => ScalingEndpointPage }
    costs { CostsRoute => CostsPage }
    journal { JournalRoute => JournalPage }
    lambda { LambdaRoute => LambdaPage, FunctionRoute => FunctionPage }
    iam { IamRoute => IamPage }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let status = StatusResource(Resource::new(|| (), |_| backend_status()));
    provide_context(status);
    crate::auth::WhoAmI::provide();

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
                            <Route path=path!("/") view={Lazy::<OverviewRoute>::new()}/>
                            <Route path=path!("/notebooks") view={Lazy::<NotebooksRoute>::new()}/>
                            <Route path=path!("/notebooks/:name") view={Lazy::<NotebookDetailRoute>::new()}/>
                            <Route path=path!("/training") view={Lazy::<TrainingRoute>::new()}/>
                            <Route path=path!("/training/local/:id") view={Lazy::<LocalJobRoute>::new()}/>
                            <Route path=path!("/training/sagemaker/:name") view={Lazy::<SageMakerJobRoute>::new()}/>
                            <Route path=path!("/training/tuning/:name") view={Lazy::<TuningJobRoute>::new()}/>
                            <Route path=path!("/endpoints") view={Lazy::<EndpointsRoute>::new()}/>
                            <Route path=path!("/endpoints/:backend/:name") view={Lazy::<EndpointRoute>::new()}/>
                            <Route path=path!("/scaling") view={Lazy::<ScalingRoute>::new()}/>
                            <Route path=path!("/scaling/:backend/:name") view={Lazy::<ScalingEndpointRoute>::new()}/>
                            <Route path=path!("/costs") view={Lazy::<CostsRoute>::new()}/>
                            <Route path=path!("/journal") view={Lazy::<JournalRoute>::new()}/>
                            <Route path=path!("/lambda") view={Lazy::<LambdaRoute>::new()}/>
                            <Route path=path!("/lambda/:home/:name") view={Lazy::<FunctionRoute>::new()}/>
                            <Route path=path!("/iam") view={Lazy::<IamRoute>::new()}/>
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

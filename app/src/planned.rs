//! Pages whose backends are not built yet. They say so plainly and list what
//! is coming, instead of showing empty tables that look like real data.

use crate::components::PageHeader;
use leptos::prelude::*;

#[component]
fn Planned(title: &'static str, summary: &'static str, coming: &'static [&'static str]) -> impl IntoView {
    view! {
        <PageHeader title=title/>
        <div class="planned" data-planned="true">
            <p><strong>"Not built yet."</strong>" "{summary}</p>
            <p>"This page will:"</p>
            <ul>{coming.iter().map(|c| view! { <li>{*c}</li> }).collect_view()}</ul>
        </div>
    }
}

#[component]
pub fn IamPage() -> impl IntoView {
    view! {
        <Planned
            title="IAM"
            summary="The IAM risk review is not built yet."
            coming=&[
                "audit the roles of the ML stack: FullAccess policies, wildcards, PassRole, trust policies, unused roles",
                "show each finding at its place in the policy and propose a least-privilege fix",
            ]
        />
    }
}

//! The axum router: Leptos pages and server functions, static files, health.

use app::notebooks::Notebooks;
use app::training::LocalTraining;
use app::ApiError;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use app::overview::Status;
use app::{shell, App};
use axum::extract::FromRef;
use axum::routing::get;
use axum::{Json, Router};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::trace::TraceLayer;

/// What every request can reach.
#[derive(Clone)]
pub struct AppState {
    pub leptos: LeptosOptions,
    pub services: Services,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

/// The implementations behind the server functions, put into each request's
/// Leptos context.
#[derive(Clone)]
pub struct Services {
    pub status: Status,
    pub notebooks: Notebooks,
    pub local_training: LocalTraining,
    pub endpoints: std::sync::Arc<crate::endpoints::EndpointHub>,
    pub sagemaker_training: std::sync::Arc<crate::training::sagemaker::SageMakerJobs>,
    pub uploads: std::sync::Arc<crate::training::upload::UploadHub>,
    pub scaling: std::sync::Arc<crate::scaling::ScalingHub>,
    pub lambda: std::sync::Arc<crate::lambda::LambdaHub>,
    pub reverter: std::sync::Arc<crate::lambda::ConsoleReverter>,
    pub iam: std::sync::Arc<crate::iam::AwsIam>,
    pub sessions: app::auth::Sessions,
    pub costs: std::sync::Arc<crate::costs::CostHub>,
    pub schedules: std::sync::Arc<crate::schedules::ScheduleHub>,
}

impl Services {
    fn provide(&self) {
        provide_context(self.status.clone());
        provide_context(self.notebooks.clone());
        provide_context::<app::costs::Costs>(self.costs.clone());
        provide_context::<app::schedules::Schedules>(self.schedules.clone());
        provide_context(self.local_training.clone());
        provide_context::<app::endpoints::Endpoints>(self.endpoints.clone());
        provide_context::<app::training::sagemaker::SageMakerTraining>(self.sagemaker_training.clone());
        provide_context::<app::training::tuning::Tuning>(self.sagemaker_training.clone());
        provide_context::<app::training::history::JobHistory>(self.sagemaker_training.clone());
        provide_context::<app::training::upload::Uploads>(self.uploads.clone());
        provide_context::<app::scaling::Scaling>(self.scaling.clone());
        provide_context::<app::journal::Reverter>(self.reverter.clone());
        provide_context::<app::lambda::Lambda>(self.lambda.clone());
        provide_context::<app::iam::Iam>(self.iam.clone());
        provide_context::<app::auth::Sessions>(self.sessions.clone());
        // What the auth guard learnt about this request: who is asking, and
        // the nonce the page's inline scripts must carry under its CSP.
        if let Some(parts) = use_context::<axum::http::request::Parts>() {
            if let Some(principal) = parts.extensions.get::<app::auth::Principal>() {
                provide_context(principal.clone());
            }
            if let Some(nonce) = parts.extensions.get::<crate::auth::guard::CspNonce>() {
                provide_context(leptos::nonce::Nonce::from_value(nonce.0.clone()));
            }
        }
    }
}

pub fn router(state: AppState, auth: std::sync::Arc<crate::auth::Auth>) -> Router {
    let routes = generate_route_list(App);
    let services = state.services.clone();
    let for_errors = state.services.clone();
    let options = state.leptos.clone();
    let invoke = crate::endpoints::invoke::routes(state.services.endpoints.clone());
    let functions = crate::lambda::routes(state.services.lambda.clone());
    let pkg = assets(&state.leptos);
    Router::new()
        .route("/healthz", get(healthz))
        .nest_service("/pkg", pkg)
        .route(app::training::sagemaker::SOURCE_DIR_DOWNLOAD, get(source_dir))
        .leptos_routes_with_context(&state, routes, move || services.provide(), move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(
            move || for_errors.provide(),
            shell,
        ))
        .layer(middleware::from_fn(api_error_status))
        .with_state(state)
        // The invoke routes answer in SageMaker's shape themselves.
        .merge(invoke)
        .merge(functions)
        .merge(crate::auth::login::routes(auth.clone()))
        // Every route, pages, server functions, invocations and files alike.
        .layer(middleware::from_fn_with_state(auth, crate::auth::guard::guard))
        .layer(TraceLayer::new_for_http())
}

/// The browser files: the brotli or gzip copy `sagedeck site` wrote when the
/// browser accepts it, Last-Modified for revalidation, and a year of caching
/// for content-hashed names (a new build has new names); plain names are
/// revalidated each time. ServeDir picks the copy by Accept-Encoding but
/// does not say so; `Vary: Accept-Encoding` does (RFC 9110 12.5.5), so that
/// a shared cache in front of the console (`public` allows one) never hands
/// the brotli copy to a client that did not ask for it.
fn assets(options: &leptos::prelude::LeptosOptions) -> Router {
    use tower_http::services::ServeDir;
    let dir = std::path::Path::new(options.site_root.as_ref()).join(options.site_pkg_dir.as_ref());
    let files = ServeDir::new(dir).precompressed_br().precompressed_gzip();
    Router::new().fallback_service(files).layer(middleware::map_response(
        |uri: axum::http::Uri, mut response: Response| async move {
            let name = uri.path().rsplit('/').next().unwrap_or_default();
            let policy = if response.status().is_success() && crate::site::is_hashed(name) {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            let headers = response.headers_mut();
            headers.insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static(policy));
            headers.insert(axum::http::header::VARY, axum::http::HeaderValue::from_static("accept-encoding"));
            response
        },
    ))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// Sagedeck's training code as a job fetches it (the launch form's CLI
/// equivalent downloads it from here).
async fn source_dir() -> Response {
    Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "application/gzip")
        .header(axum::http::header::CONTENT_DISPOSITION, "attachment; filename=\"sourcedir.tar.gz\"")
        .body(Body::from(crate::training::sagemaker_code::source_dir()))
        .expect("static headers")
}

/// Server-function errors leave the framework as 500 whatever they are; this
/// gives each the status its [`ApiError`] variant stands for (404, 409, 503…),
/// including errors raised before our code runs, such as malformed arguments.
async fn api_error_status(req: Request<Body>, next: Next) -> Response {
    let is_api = req.uri().path().starts_with("/api/");
    let res = next.run(req).await;
    if !is_api || res.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    // Error bodies are a few hundred bytes; the cap only guards the buffer.
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    if let Ok(err) = serde_json::from_slice::<ApiError>(&bytes) {
        parts.status = err.http_status();
    }
    Response::from_parts(parts, Body::from(bytes))
}

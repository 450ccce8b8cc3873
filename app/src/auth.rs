//! Who may do what. Roles, the role each server function needs, and who is
//! signed in. The table here is the one the server enforces (its middleware
//! looks every request up in it before the function runs); the UI reads the
//! same table only to grey out what the signed-in role cannot do.

use crate::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// A user's role, least to most trusted. Each role can do everything the ones
/// before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads every page; changes nothing.
    Viewer,
    /// Runs jobs, deploys, invokes, edits scaling and concurrency.
    Operator,
    /// Changes IAM (fixes, the Lambda set-up's role) and manages users.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Role, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!("{other:?} is not a role: use viewer, operator or admin")),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The role every server function needs, by its endpoint (under `/api/`).
/// A server function missing here is refused to everyone (the server's tests
/// check that every registered function is listed).
pub const SERVER_FN_ROLES: &[(&str, Role)] = &[
    // Reads.
    ("overview/status", Role::Viewer),
    ("journal/recent", Role::Viewer),
    ("journal/search", Role::Viewer),
    ("journal/count", Role::Viewer),
    ("auth/whoami", Role::Viewer),
    ("auth/logout", Role::Viewer),
    ("notebooks/list", Role::Viewer),
    ("costs/view", Role::Viewer),
    ("schedules/list", Role::Viewer),
    ("notebooks/describe", Role::Viewer),
    ("notebooks/roles", Role::Viewer),
    ("training/local/defaults", Role::Viewer),
    ("training/local/list", Role::Viewer),
    ("training/history", Role::Viewer),
    ("training/local/get", Role::Viewer),
    ("training/sagemaker/list", Role::Viewer),
    ("training/sagemaker/describe", Role::Viewer),
    ("training/sagemaker/logs", Role::Viewer),
    ("training/sagemaker/defaults", Role::Viewer),
    ("training/sagemaker/metrics", Role::Viewer),
    ("training/uploads/list", Role::Viewer),
    ("training/uploads/get", Role::Viewer),
    ("training/tuning/list", Role::Viewer),
    ("training/tuning/describe", Role::Viewer),
    ("aws/calls", Role::Viewer),
    ("endpoints/list", Role::Viewer),
    ("endpoints/describe", Role::Viewer),
    ("endpoints/metrics", Role::Viewer),
    ("endpoints/versions", Role::Viewer),
    ("endpoints/sagemaker/rollouts", Role::Viewer),
    ("endpoints/alarms", Role::Viewer),
    ("endpoints/sagemaker/deployable", Role::Viewer),
    ("scaling/overview", Role::Viewer),
    ("scaling/describe", Role::Viewer),
    ("scaling/trace", Role::Viewer),
    ("lambda/list", Role::Viewer),
    ("lambda/describe", Role::Viewer),
    ("lambda/metrics", Role::Viewer),
    ("iam/review", Role::Viewer),
    ("iam/fix/plan", Role::Viewer),
    // Operations.
    ("notebooks/start", Role::Operator),
    ("schedules/create", Role::Operator),
    ("schedules/delete", Role::Operator),
    ("notebooks/stop", Role::Operator),
    ("notebooks/create", Role::Operator),
    ("notebooks/delete", Role::Operator),
    // A presigned URL opens JupyterLab with the notebook's role: an operator's.
    ("notebooks/open", Role::Operator),
    ("training/local/create", Role::Operator),
    ("training/local/cancel", Role::Operator),
    ("training/datasets/check", Role::Operator),
    ("training/datasets/demo", Role::Operator),
    ("training/sagemaker/launch", Role::Operator),
    ("training/sagemaker/refresh", Role::Operator),
    ("endpoints/refresh", Role::Operator),
    ("training/sagemaker/stop", Role::Operator),
    ("training/uploads/start", Role::Operator),
    ("training/uploads/cancel", Role::Operator),
    ("training/tuning/launch", Role::Operator),
    ("endpoints/local/deploy", Role::Operator),
    ("endpoints/sagemaker/deploy", Role::Operator),
    ("endpoints/delete", Role::Operator),
    ("endpoints/rollout/start", Role::Operator),
    ("endpoints/rollout/rollback", Role::Operator),
    ("endpoints/shadow", Role::Operator),
    ("endpoints/sagemaker/rollout/start", Role::Operator),
    ("endpoints/sagemaker/rollout/rollback", Role::Operator),
    ("endpoints/alarms/put", Role::Operator),
    ("endpoints/testbench", Role::Operator),
    ("scaling/put", Role::Operator),
    ("scaling/remove", Role::Operator),
    ("lambda/reserved", Role::Operator),
    ("lambda/provisioned", Role::Operator),
    ("lambda/invoke", Role::Operator),
    ("lambda/local/create", Role::Operator),
    ("lambda/delete", Role::Operator),
    // A revert needs the role of the change it undoes; the reverter checks
    // that on top of this (an IAM fix's rollback needs admin).
    ("journal/revert", Role::Operator),
    // IAM: the set-up creates a role and its policy, the fix rewrites one.
    ("lambda/setup", Role::Admin),
    ("iam/fix/apply", Role::Admin),
];

/// The role a server function needs; `None` for a path that is not one.
pub fn server_fn_role(path: &str) -> Option<Role> {
    let endpoint = path.strip_prefix("/api/")?;
    SERVER_FN_ROLES.iter().find(|(e, _)| *e == endpoint).map(|(_, r)| *r)
}

/// The role a journal action needs to be reverted.
pub fn revert_role(action: &str) -> Role {
    if action.starts_with("iam.") || action == "lambda.setup" {
        Role::Admin
    } else {
        Role::Operator
    }
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    /// The console runs without sign-in (loopback only, no users yet).
    pub open: bool,
}

impl Principal {
    /// The caller in open mode: everything is allowed, as on the machine itself.
    pub fn open() -> Principal {
        Principal { name: "local".into(), role: Role::Admin, open: true }
    }

    pub fn may(&self, needed: Role) -> bool {
        self.role >= needed
    }

    /// The refusal for a call this principal's role does not allow.
    pub fn require(&self, needed: Role, what: &str) -> Result<(), ApiError> {
        if self.may(needed) {
            Ok(())
        } else {
            Err(ApiError::AccessDenied(format!(
                "{} is signed in as {}, and {what} needs the {needed} role{}",
                self.name,
                self.role,
                if needed == Role::Admin { "" } else { " or admin" }
            )))
        }
    }
}

#[server(client = crate::csrf::CsrfClient, endpoint = "auth/whoami")]
pub async fn whoami() -> Result<Principal, ApiError> {
    crate::error::service::<Principal>()
}

/// Ends the session: the server deletes it and expires the cookies.
#[server(client = crate::csrf::CsrfClient, endpoint = "auth/logout")]
pub async fn logout() -> Result<(), ApiError> {
    let principal = crate::error::service::<Principal>()?;
    if principal.open {
        return Err(ApiError::Conflict("this console runs without sign-in, so there is nothing to sign out of".into()));
    }
    crate::error::service::<Sessions>()?.end_current().await
}

/// The server's side of signing out (implemented in the `server` crate).
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait SessionService: Send + Sync {
    /// Deletes the session of the current request and expires its cookies.
    async fn end_current(&self) -> Result<(), ApiError>;
}

#[cfg(feature = "ssr")]
pub type Sessions = std::sync::Arc<dyn SessionService>;

/// The signed-in user, fetched once by the layout. `resource` feeds the
/// account chip (inside a Transition, so the server waits for it); `known` is
/// the same value copied by an effect once the page runs in the browser, for
/// the greyed-out buttons: reading the resource itself there would make the
/// server render them without waiting and the hydrated page disagree.
#[derive(Clone, Copy)]
pub struct WhoAmI {
    pub resource: Resource<Result<Principal, ApiError>>,
    known: RwSignal<Option<Principal>>,
    hydrated: RwSignal<bool>,
}

// The browser runs one console, so one WhoAmI: `hydrate()` reaches it here
// to say the page is hydrated.
#[cfg(feature = "hydrate")]
thread_local! {
    static BROWSER_WHO: std::cell::Cell<Option<WhoAmI>> = const { std::cell::Cell::new(None) };
}

impl WhoAmI {
    /// Fetches the principal and keeps `known` up to date in the browser,
    /// from the moment the page is hydrated. Not before: hydration takes the
    /// server's HTML as it is (buttons enabled, as `may` says before it knows)
    /// and only later changes reach the page. With lazy routes (shell.rs) the
    /// layout is hydrated, then the page waits for its code, and this effect
    /// would run in between: the page's buttons would hydrate already
    /// knowing, and never grey out (tests/browser/auth.mjs caught it).
    pub fn provide() {
        let who = WhoAmI { resource: Resource::new(|| (), |_| whoami()), known: RwSignal::new(None), hydrated: RwSignal::new(false) };
        Effect::new(move |_| {
            if !who.hydrated.get() {
                return;
            }
            if let Some(Ok(p)) = who.resource.get() {
                who.known.set(Some(p));
            }
        });
        provide_context(who);
        #[cfg(feature = "hydrate")]
        BROWSER_WHO.set(Some(who));
    }
}

/// Called by `hydrate()` once the whole page is hydrated.
#[cfg(feature = "hydrate")]
pub fn page_hydrated() {
    if let Some(who) = BROWSER_WHO.get() {
        who.hydrated.set(true);
    }
}

/// Whether the signed-in user has at least `needed`, for greying out buttons
/// (the server decides; this only spares a click). Reactive: read it inside a
/// closure. `true` until the browser knows who is signed in.
pub fn may(needed: Role) -> bool {
    match use_context::<WhoAmI>().and_then(|w| w.known.get()) {
        Some(p) => p.may(needed),
        None => true,
    }
}

/// Whether the signed-in user may call a server function (see [`may`]).
pub fn allowed(endpoint: &str) -> bool {
    may(server_fn_role(&format!("/api/{endpoint}")).unwrap_or(Role::Admin))
}

/// The tooltip of a button the signed-in role may not use.
pub fn needs_title(endpoint: &'static str) -> impl Fn() -> Option<String> + Send + Sync + 'static {
    move || {
        let needed = server_fn_role(&format!("/api/{endpoint}")).unwrap_or(Role::Admin);
        (!allowed(endpoint)).then(|| format!("Needs the {needed} role"))
    }
}

/// The topbar's account chip: who is signed in and a sign-out button, or a
/// warning that the console runs open.
#[component]
pub fn AccountChip() -> impl IntoView {
    let who = expect_context::<WhoAmI>();
    let sign_out = Action::new(|_: &()| async move {
        let result = logout().await;
        #[cfg(feature = "hydrate")]
        if result.is_ok() {
            let _ = window().location().set_href("/login");
        }
        result
    });
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match who.resource.await {
                    Ok(p) if p.open => view! {
                        <span class="chip chip-warn" id="account" title="Anyone who can reach this address can change everything. Add a user with `sagedeck user add` to turn sign-in on.">
                            "Open: no sign-in (loopback only)"
                        </span>
                    }.into_any(),
                    Ok(p) => view! {
                        <span class="chip" id="account">{format!("{} · {}", p.name, p.role)}</span>
                        <button class="btn btn-small" id="sign-out" on:click=move |_| { sign_out.dispatch(()); }>"Sign out"</button>
                    }.into_any(),
                    Err(_) => ().into_any(),
                }
            })}
        </Transition>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse_back() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        for r in [Role::Viewer, Role::Operator, Role::Admin] {
            assert_eq!(Role::parse(r.as_str()), Ok(r));
        }
        assert!(Role::parse("root").unwrap_err().contains("viewer, operator or admin"));
    }

    #[test]
    fn the_table_classifies_functions_and_nothing_else() {
        assert_eq!(server_fn_role("/api/notebooks/list"), Some(Role::Viewer));
        assert_eq!(server_fn_role("/api/notebooks/stop"), Some(Role::Operator));
        assert_eq!(server_fn_role("/api/iam/fix/apply"), Some(Role::Admin));
        assert_eq!(server_fn_role("/api/nope"), None);
        assert_eq!(server_fn_role("/notebooks/list"), None);
        let mut names: Vec<&str> = SERVER_FN_ROLES.iter().map(|(e, _)| *e).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), SERVER_FN_ROLES.len(), "an endpoint is listed twice");
    }

    #[test]
    fn a_refusal_names_the_role_needed() {
        let viewer = Principal { name: "vera".into(), role: Role::Viewer, open: false };
        let err = viewer.require(Role::Operator, "stopping a notebook").unwrap_err();
        assert_eq!(err.status(), 403);
        assert!(err.message().contains("vera is signed in as viewer"), "{err}");
        assert!(err.message().contains("operator role or admin"), "{err}");
        assert!(Principal::open().require(Role::Admin, "anything").is_ok());
        assert_eq!(revert_role("iam.fix"), Role::Admin);
        assert_eq!(revert_role("scaling.put"), Role::Operator);
    }
}

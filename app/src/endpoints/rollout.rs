//! Model versions and rollouts of a local endpoint: the plan a traffic shift
//! follows (all at once, canary, linear, as SageMaker's blue/green
//! deployment guardrails name them), the split that sends each request to
//! one version, and the judgement that rolls a bad version back. Pure, so the
//! page shows the same plan the server follows.

use super::{Batching, LocalDeploySpec};
use crate::ApiError;
use serde::{Deserialize, Serialize};

/// How traffic moves from the live version to the new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Shift {
    /// Everything at once, then the bake time.
    AllAtOnce,
    /// `percent` of requests for `hold_seconds`, then everything.
    Canary { percent: u32, hold_seconds: u32 },
    /// `steps` equal steps, `interval_seconds` apart, up to everything.
    Linear { steps: u32, interval_seconds: u32 },
}

/// The longest a step may hold (a day).
pub const MAX_HOLD_SECONDS: u32 = 86_400;
pub const MAX_LINEAR_STEPS: u32 = 20;

impl Shift {
    pub fn validate(&self) -> Result<(), ApiError> {
        match *self {
            Shift::AllAtOnce => Ok(()),
            Shift::Canary { percent, hold_seconds } => {
                if !(1..=99).contains(&percent) {
                    return Err(ApiError::Invalid(format!("canary percent must be 1 to 99 (the rest stays on the live version), not {percent}")));
                }
                hold(hold_seconds, "hold_seconds")
            }
            Shift::Linear { steps, interval_seconds } => {
                if !(1..=MAX_LINEAR_STEPS).contains(&steps) {
                    return Err(ApiError::Invalid(format!("steps must be 1 to {MAX_LINEAR_STEPS}, not {steps}")));
                }
                hold(interval_seconds, "interval_seconds")
            }
        }
    }

    /// The traffic steps before the last one (100 %), each with its hold.
    pub fn steps(&self, bake_seconds: u32) -> Vec<Step> {
        let mut steps = match *self {
            Shift::AllAtOnce => Vec::new(),
            Shift::Canary { percent, hold_seconds } => vec![Step { percent, hold_seconds }],
            Shift::Linear { steps, interval_seconds } => {
                (1..steps).map(|k| Step { percent: k * 100 / steps, hold_seconds: interval_seconds }).collect()
            }
        };
        steps.push(Step { percent: 100, hold_seconds: bake_seconds });
        steps
    }

    pub fn describe(&self) -> String {
        match *self {
            Shift::AllAtOnce => "all at once".into(),
            Shift::Canary { percent, hold_seconds } => format!("canary {percent} % for {}, then 100 %", seconds_text(hold_seconds)),
            Shift::Linear { steps, interval_seconds } => {
                format!("linear in {steps} steps of {} % every {}", 100 / steps.max(1), seconds_text(interval_seconds))
            }
        }
    }
}

fn hold(seconds: u32, field: &str) -> Result<(), ApiError> {
    if !(1..=MAX_HOLD_SECONDS).contains(&seconds) {
        return Err(ApiError::Invalid(format!("{field} must be 1 to {MAX_HOLD_SECONDS} seconds, not {seconds}")));
    }
    Ok(())
}

pub fn seconds_text(s: u32) -> String {
    match s {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// One traffic step: this share of requests to the new version, held this long.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub percent: u32,
    pub hold_seconds: u32,
}

/// When a rollout rolls itself back: the new version's share of requests
/// in the current step crosses one of these.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Guardrails {
    /// Failed answers (5xx), in percent of the new version's requests.
    pub max_error_percent: f64,
    /// The new version's p99 latency, whole request.
    pub max_p99_ms: Option<u32>,
    /// How often the new version's top class is the live one's for the same
    /// image (each image the new version answers is also scored by the live
    /// version while it is loaded).
    pub min_agreement_percent: Option<f64>,
    /// Nothing is judged on fewer requests than this in a step.
    pub min_requests: u32,
}

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails { max_error_percent: 1.0, max_p99_ms: None, min_agreement_percent: Some(80.0), min_requests: 20 }
    }
}

impl Guardrails {
    pub fn validate(&self) -> Result<(), ApiError> {
        if !(0.0..=100.0).contains(&self.max_error_percent) {
            return Err(ApiError::Invalid(format!("max_error_percent must be 0 to 100, not {}", self.max_error_percent)));
        }
        if let Some(a) = self.min_agreement_percent {
            if !(0.0..=100.0).contains(&a) {
                return Err(ApiError::Invalid(format!("min_agreement_percent must be 0 to 100, not {a}")));
            }
        }
        if self.max_p99_ms == Some(0) {
            return Err(ApiError::Invalid("max_p99_ms must be at least 1 ms (or none)".into()));
        }
        if !(1..=100_000).contains(&self.min_requests) {
            return Err(ApiError::Invalid(format!("min_requests must be 1 to 100000, not {}", self.min_requests)));
        }
        Ok(())
    }

    pub fn describe(&self) -> String {
        let mut parts = vec![format!("errors > {} %", self.max_error_percent)];
        if let Some(ms) = self.max_p99_ms {
            parts.push(format!("p99 > {ms} ms"));
        }
        if let Some(a) = self.min_agreement_percent {
            parts.push(format!("agreement < {a} %"));
        }
        format!("roll back if {} (over ≥ {} requests)", parts.join(", or "), self.min_requests)
    }
}

/// What the next version serves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VersionSource {
    /// A completed local job's artifact.
    LocalJob { job_id: i64 },
    /// A completed SageMaker job's model.tar.gz, downloaded and unpacked.
    SageMakerJob { name: String },
    /// One of this endpoint's earlier versions (a rollback).
    Version { version: u32 },
}

impl VersionSource {
    pub fn describe(&self) -> String {
        match self {
            VersionSource::LocalJob { job_id } => format!("local job #{job_id}"),
            VersionSource::SageMakerJob { name } => format!("SageMaker job {name}"),
            VersionSource::Version { version } => format!("version {version}'s model"),
        }
    }
}

/// A rollout asked for from the endpoint's page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RolloutSpec {
    pub endpoint: String,
    pub source: VersionSource,
    /// Replicas and batching of the new version; `None` keeps the live ones.
    pub instances: Option<u32>,
    pub batching: Option<Batching>,
    pub shift: Shift,
    /// How long everything stays on the new version, still judged, with the
    /// old replicas kept loaded for an instant rollback.
    pub bake_seconds: u32,
    pub guardrails: Guardrails,
    /// The new version's classes differ from the live one's (names or
    /// order): clients reading indices would be misled, so it must be said.
    pub accept_class_change: bool,
}

impl RolloutSpec {
    pub fn validate(&self) -> Result<(), ApiError> {
        crate::names::EndpointName::parse(&self.endpoint)?;
        self.shift.validate()?;
        if self.bake_seconds > MAX_HOLD_SECONDS {
            return Err(ApiError::Invalid(format!("bake_seconds must be 0 to {MAX_HOLD_SECONDS}, not {}", self.bake_seconds)));
        }
        self.guardrails.validate()?;
        if let VersionSource::SageMakerJob { name } = &self.source {
            if name.trim().is_empty() {
                return Err(ApiError::Invalid("name the completed SageMaker training job to roll out".into()));
            }
        }
        if let VersionSource::Version { version: 0 } = self.source {
            return Err(ApiError::Invalid("versions are numbered from 1".into()));
        }
        // The replica and batching limits of a new deployment apply.
        let probe = LocalDeploySpec {
            name: self.endpoint.clone(),
            job_id: 1,
            sagemaker_job: None,
            instances: self.instances.unwrap_or(1),
            batching: self.batching.unwrap_or(LocalDeploySpec::DEFAULT_BATCHING),
        };
        probe.validate()
    }

    /// The plan in words, for the journal and the page.
    pub fn plan_text(&self) -> String {
        let bake = if self.bake_seconds > 0 { format!("; bake {}", seconds_text(self.bake_seconds)) } else { String::new() };
        format!("{}{bake}; {}", self.shift.describe(), self.guardrails.describe())
    }
}

/// Whether request number `n` (0, 1, 2… in arrival order) goes to the new
/// version when it has `percent` of the traffic: exactly `percent` of every
/// 100 consecutive requests, spread evenly (request n goes there when
/// ⌊(n+1)·p/100⌋ passes a whole number), so a split is within one request
/// of the plan at every moment rather than only on average.
pub fn to_candidate(n: u64, percent: u32) -> bool {
    let p = u64::from(percent.min(100));
    (n + 1) * p / 100 > n * p / 100
}

/// One version's answers in the current step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionStats {
    pub requests: u64,
    /// Answered with a 5xx (the model or the server failed).
    pub errors: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Images also scored by the other version, and how many got the same top class.
    pub compared: u64,
    pub agreed: u64,
}

impl VersionStats {
    pub fn error_percent(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 * 100.0 / self.requests as f64)
    }

    pub fn agreement_percent(&self) -> Option<f64> {
        (self.compared > 0).then(|| self.agreed as f64 * 100.0 / self.compared as f64)
    }
}

/// The `q` quantile (0..1) of `samples` by nearest rank; `None` when empty.
pub fn quantile(samples: &[f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// The new version's step so far against the guardrails: `Some(why)` when
/// it must roll back. Errors are judged on `min_requests` requests, the
/// latency on as many, the agreement on as many compared images.
pub fn breach(candidate: &VersionStats, rails: &Guardrails) -> Option<String> {
    let enough = u64::from(rails.min_requests);
    if candidate.requests >= enough {
        let errors = candidate.error_percent().unwrap_or(0.0);
        if errors > rails.max_error_percent {
            return Some(format!(
                "{} of {} requests to the new version failed ({errors:.1} %, the limit {} %)",
                candidate.errors, candidate.requests, rails.max_error_percent
            ));
        }
        if let (Some(limit), Some(p99)) = (rails.max_p99_ms, candidate.p99_ms) {
            if p99 > f64::from(limit) {
                return Some(format!("the new version's p99 latency is {p99:.0} ms over {} requests (the limit {limit} ms)", candidate.requests));
            }
        }
    }
    if let (Some(limit), Some(agreement)) = (rails.min_agreement_percent, candidate.agreement_percent()) {
        if candidate.compared >= enough && agreement < limit {
            return Some(format!(
                "the new version agreed with the live one on {} of {} images ({agreement:.1} %, the minimum {limit} %)",
                candidate.agreed, candidate.compared
            ));
        }
    }
    None
}

/// How two class lists differ, in words; `None` when they are the same.
pub fn class_change(live: &[String], next: &[String]) -> Option<String> {
    if live == next {
        return None;
    }
    let added: Vec<&String> = next.iter().filter(|c| !live.contains(c)).collect();
    let removed: Vec<&String> = live.iter().filter(|c| !next.contains(c)).collect();
    let list = |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    Some(if added.is_empty() && removed.is_empty() {
        format!("the same {} classes in another order (index 0 is {:?} instead of {:?})", next.len(), next[0], live[0])
    } else {
        let mut parts = Vec::new();
        if !added.is_empty() {
            parts.push(format!("new: {}", list(&added)));
        }
        if !removed.is_empty() {
            parts.push(format!("gone: {}", list(&removed)));
        }
        parts.join("; ")
    })
}

/// One version of a local endpoint, as its page lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointVersion {
    pub version: u32,
    pub source: String,
    pub job_id: Option<i64>,
    pub artifact_dir: String,
    /// From the artifact's metadata, when it is still there.
    pub test_accuracy: Option<f64>,
    pub classes: Vec<String>,
    pub instances: u32,
    pub batching: Batching,
    pub created_at: String,
    pub created_by: String,
    pub live_from: Option<String>,
    pub live_until: Option<String>,
    pub live: bool,
}

/// Where a local rollout stands, as `endpoint_rollouts.state` stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    Running,
    Completed,
    RolledBack,
    /// The console stopped while it ran; the old version serves.
    Interrupted,
}

impl RolloutState {
    pub const ALL: [RolloutState; 4] = [RolloutState::Running, RolloutState::Completed, RolloutState::RolledBack, RolloutState::Interrupted];

    /// The stored word (and the JSON one).
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::Running => "running",
            RolloutState::Completed => "completed",
            RolloutState::RolledBack => "rolled_back",
            RolloutState::Interrupted => "interrupted",
        }
    }

    pub fn parse(word: &str) -> Option<RolloutState> {
        Self::ALL.into_iter().find(|s| s.as_str() == word)
    }

    /// The badge's colour (see `components::Badge`).
    pub fn tone(self) -> &'static str {
        match self {
            RolloutState::Completed => "ok",
            RolloutState::Running => "busy",
            RolloutState::RolledBack | RolloutState::Interrupted => "bad",
        }
    }

    /// In words: "rolled back".
    pub fn words(self) -> &'static str {
        match self {
            RolloutState::RolledBack => "rolled back",
            other => other.as_str(),
        }
    }
}

/// A rollout, running or ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RolloutView {
    pub id: i64,
    pub from_version: u32,
    pub to_version: u32,
    pub plan: String,
    pub steps: Vec<Step>,
    /// The step in progress (0-based) and the new version's share now.
    pub step: u32,
    pub percent: u32,
    /// Seconds into the step, while it runs.
    pub step_seconds: Option<f64>,
    pub state: RolloutState,
    pub outcome: Option<String>,
    pub started_by: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    /// This step's answers per version while it runs; the whole rollout's once ended.
    pub live: VersionStats,
    pub candidate: VersionStats,
}

impl RolloutView {
    pub fn running(&self) -> bool {
        self.state == RolloutState::Running
    }
}

/// A local endpoint's versions and rollouts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionsView {
    pub endpoint: String,
    pub live_version: u32,
    pub versions: Vec<EndpointVersion>,
    /// Newest first; the running one, if any, first.
    pub rollouts: Vec<RolloutView>,
}

impl VersionsView {
    pub fn running(&self) -> Option<&RolloutView> {
        self.rollouts.first().filter(|r| r.running())
    }
}

/// One version's answers in a shadow test.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShadowSide {
    /// "version 3 (live)", "local job #7 (proposed)".
    pub label: String,
    pub judged: u32,
    pub correct: u32,
    pub failed: u32,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl ShadowSide {
    pub fn accuracy(&self) -> Option<f64> {
        (self.judged > 0).then(|| f64::from(self.correct) / f64::from(self.judged))
    }
}

/// An image the two versions answered differently.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShadowDisagreement {
    pub path: String,
    pub truth: String,
    pub live: String,
    pub proposed: String,
}

/// The same labelled folder through the live and a proposed version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShadowReport {
    pub images: u32,
    pub live: ShadowSide,
    pub proposed: ShadowSide,
    /// Images both answered, and how many got the same top class.
    pub compared: u32,
    pub agreed: u32,
    pub disagreements: Vec<ShadowDisagreement>,
    pub seconds: f64,
}

impl ShadowReport {
    pub fn agreement_percent(&self) -> Option<f64> {
        (self.compared > 0).then(|| f64::from(self.agreed) * 100.0 / f64::from(self.compared))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_states_read_back_as_stored_and_as_sent() {
        for state in RolloutState::ALL {
            assert_eq!(RolloutState::parse(state.as_str()), Some(state));
            assert_eq!(serde_json::to_string(&state).unwrap(), format!("\"{}\"", state.as_str()));
        }
        assert_eq!(RolloutState::parse("failed"), None);
        assert_eq!(RolloutState::RolledBack.words(), "rolled back");
    }

    #[test]
    fn plans_follow_the_shift() {
        assert_eq!(Shift::AllAtOnce.steps(30), vec![Step { percent: 100, hold_seconds: 30 }]);
        assert_eq!(
            Shift::Canary { percent: 10, hold_seconds: 60 }.steps(0),
            vec![Step { percent: 10, hold_seconds: 60 }, Step { percent: 100, hold_seconds: 0 }]
        );
        let linear = Shift::Linear { steps: 4, interval_seconds: 5 }.steps(10);
        assert_eq!(linear.iter().map(|s| s.percent).collect::<Vec<_>>(), vec![25, 50, 75, 100]);
        assert_eq!(linear.last().unwrap().hold_seconds, 10);
        let thirds = Shift::Linear { steps: 3, interval_seconds: 5 }.steps(0);
        assert_eq!(thirds.iter().map(|s| s.percent).collect::<Vec<_>>(), vec![33, 66, 100]);
    }

    #[test]
    fn bad_plans_are_refused_naming_the_field() {
        for (shift, field) in [
            (Shift::Canary { percent: 0, hold_seconds: 5 }, "canary percent"),
            (Shift::Canary { percent: 100, hold_seconds: 5 }, "canary percent"),
            (Shift::Canary { percent: 10, hold_seconds: 0 }, "hold_seconds"),
            (Shift::Linear { steps: 0, interval_seconds: 5 }, "steps"),
            (Shift::Linear { steps: 21, interval_seconds: 5 }, "steps"),
            (Shift::Linear { steps: 2, interval_seconds: MAX_HOLD_SECONDS + 1 }, "interval_seconds"),
        ] {
            let e = shift.validate().unwrap_err();
            assert!(e.message().contains(field), "{shift:?}: {e:?}");
        }
        assert!(Shift::Canary { percent: 1, hold_seconds: 1 }.validate().is_ok());
        assert!(Shift::Canary { percent: 99, hold_seconds: 1 }.validate().is_ok());
        let rails = |f: fn(&mut Guardrails)| {
            let mut g = Guardrails::default();
            f(&mut g);
            g.validate()
        };
        assert!(rails(|g| g.max_error_percent = -1.0).unwrap_err().message().contains("max_error_percent"));
        assert!(rails(|g| g.min_agreement_percent = Some(101.0)).unwrap_err().message().contains("min_agreement_percent"));
        assert!(rails(|g| g.max_p99_ms = Some(0)).unwrap_err().message().contains("max_p99_ms"));
        assert!(rails(|g| g.min_requests = 0).unwrap_err().message().contains("min_requests"));
    }

    #[test]
    fn the_split_is_exact_over_every_hundred_requests() {
        for percent in [0, 1, 10, 25, 33, 50, 99, 100] {
            for start in [0u64, 7, 1234] {
                let n = (start..start + 100).filter(|&n| to_candidate(n, percent)).count() as u32;
                // Any 100 consecutive requests hold the share to within one.
                assert!(n.abs_diff(percent) <= 1, "{percent} % from {start}: {n}");
            }
            let n = (0..100).filter(|&n| to_candidate(n, percent)).count() as u32;
            assert_eq!(n, percent, "the first hundred hold it exactly");
        }
        // Spread, not bunched: at 10 %, one in every ten.
        let picks: Vec<u64> = (0..30).filter(|&n| to_candidate(n, 10)).collect();
        assert_eq!(picks, vec![9, 19, 29]);
    }

    #[test]
    fn the_guardrails_judge_enough_requests_only() {
        let rails = Guardrails { max_error_percent: 1.0, max_p99_ms: Some(200), min_agreement_percent: Some(80.0), min_requests: 20 };
        let few = VersionStats { requests: 10, errors: 10, ..Default::default() };
        assert_eq!(breach(&few, &rails), None, "10 failures of 10 are not yet judged");
        let failing = VersionStats { requests: 40, errors: 2, ..Default::default() };
        assert!(breach(&failing, &rails).unwrap().contains("2 of 40 requests"));
        let slow = VersionStats { requests: 40, p99_ms: Some(250.0), ..Default::default() };
        assert!(breach(&slow, &rails).unwrap().contains("p99"));
        let disagreeing = VersionStats { requests: 40, compared: 30, agreed: 6, ..Default::default() };
        assert!(breach(&disagreeing, &rails).unwrap().contains("6 of 30 images"));
        let good = VersionStats { requests: 40, p99_ms: Some(80.0), compared: 30, agreed: 29, ..Default::default() };
        assert_eq!(breach(&good, &rails), None);
        let lenient = Guardrails { max_p99_ms: None, min_agreement_percent: None, ..rails };
        assert_eq!(breach(&slow, &lenient), None);
        assert_eq!(breach(&disagreeing, &lenient), None);
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.99), Some(99.0));
        assert_eq!(quantile(&[3.0], 0.99), Some(3.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn class_changes_in_words() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(class_change(&s(&["cat", "dog"]), &s(&["cat", "dog"])), None);
        assert!(class_change(&s(&["cat", "dog"]), &s(&["dog", "cat"])).unwrap().contains("another order"));
        let changed = class_change(&s(&["cat", "dog"]), &s(&["cat", "fox"])).unwrap();
        assert!(changed.contains("new: fox") && changed.contains("gone: dog"), "{changed}");
    }

    #[test]
    fn a_spec_checks_its_parts() {
        let spec = RolloutSpec {
            endpoint: "shapes".into(),
            source: VersionSource::LocalJob { job_id: 2 },
            instances: None,
            batching: None,
            shift: Shift::Canary { percent: 10, hold_seconds: 30 },
            bake_seconds: 10,
            guardrails: Guardrails::default(),
            accept_class_change: false,
        };
        assert!(spec.validate().is_ok());
        assert!(RolloutSpec { instances: Some(0), ..spec.clone() }.validate().is_err());
        assert!(RolloutSpec { source: VersionSource::Version { version: 0 }, ..spec.clone() }.validate().is_err());
        assert!(RolloutSpec { endpoint: "bad name!".into(), ..spec.clone() }.validate().is_err());
        assert!(spec.plan_text().starts_with("canary 10 % for 30 s, then 100 %; bake 10 s; roll back if errors > 1 %"));
    }
}

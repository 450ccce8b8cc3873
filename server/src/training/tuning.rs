//! Hyperparameter tuning jobs: cached by the same poller as training jobs
//! (server/src/training/sagemaker.rs), launched on demand.

use super::sagemaker::{is_terminal, SageMakerJobs};
use crate::aws::created_key;
use crate::aws::from_sdk;
use crate::journal::Change;
use app::names::TrainingJobName;
use app::training::history::{Cursor, RunsOn, PAGE_SIZE};
use app::training::tuning::{TuningFilter, TuningJobDetail, TuningJobPage, TuningJobSummary, TuningService, TuningSpec, TuningTrial};
use app::ApiError;
use aws_sdk_sagemaker::types::{
    CategoricalParameterRange, ContinuousParameterRange, HyperParameterAlgorithmSpecification, HyperParameterScalingType,
    HyperParameterTrainingJobDefinition, HyperParameterTuningJobConfig, HyperParameterTuningJobObjective,
    HyperParameterTuningJobObjectiveType, HyperParameterTuningJobStrategyType, MetricDefinition, OutputDataConfig, ParameterRanges,
    ResourceLimits, StoppingCondition, TrainingInputMode, TrainingJobSortByOptions,
};
use aws_smithy_types::date_time::Format;
use sqlx::{QueryBuilder, Sqlite};

/// The first refresh reads at most this many pages of tuning jobs (10,000).
const MAX_TUNING_PAGES: usize = 100;
/// ListHyperParameterTuningJobs pages are spaced like ListTrainingJobs'.
const TUNING_PAGE_GAP: std::time::Duration = std::time::Duration::from_millis(600);

fn rfc3339(t: Option<&aws_smithy_types::DateTime>) -> Option<String> {
    t.and_then(|t| t.fmt(Format::DateTime).ok())
}

/// Store failures, logged; the page is told which store (see `store::failed`).
fn db(e: sqlx::Error) -> ApiError {
    crate::store::failed("tuning job cache")(e)
}

impl SageMakerJobs {
    /// Lists tuning jobs (one page of 100, newest first) and describes the
    /// new and unfinished ones into the cache. Says whether any still runs.
    /// Lists the tuning jobs newest first, a page of 100 at a time, and
    /// describes the new ones, those whose status changed and those still
    /// running. It reads on while a page brings something new, so the first
    /// refresh reads the account's whole tuning history (up to
    /// `MAX_TUNING_PAGES`) and later ones usually a single page.
    pub(super) async fn refresh_tuning(&self) -> Result<bool, ApiError> {
        let client = &self.aws().clients()?.sagemaker;
        let cached: std::collections::HashMap<String, String> =
            sqlx::query_as("SELECT name, status FROM sagemaker_tuning_jobs").fetch_all(self.pool()).await.map_err(db)?.into_iter().collect();
        let mut any_running = false;
        let mut token: Option<String> = None;
        for page_number in 0..MAX_TUNING_PAGES {
            if page_number > 0 {
                tokio::time::sleep(TUNING_PAGE_GAP).await;
            }
            let page = client
                .list_hyper_parameter_tuning_jobs()
                .sort_by(aws_sdk_sagemaker::types::HyperParameterTuningJobSortByOptions::CreationTime)
                .sort_order(aws_sdk_sagemaker::types::SortOrder::Descending)
                .max_results(100)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| from_sdk("SageMaker ListHyperParameterTuningJobs", e))?;
            let mut news = false;
            for job in page.hyper_parameter_tuning_job_summaries() {
                let (name, status) = (job.hyper_parameter_tuning_job_name().unwrap_or_default(), job.hyper_parameter_tuning_job_status().map(|s| s.as_str()).unwrap_or_default());
                any_running |= !is_terminal(status);
                if cached.get(name).map(String::as_str) != Some(status) || !is_terminal(status) {
                    news |= !cached.contains_key(name);
                    self.describe_tuning_into_cache(name).await?;
                }
            }
            token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
            if token.is_none() || !news {
                break;
            }
        }
        Ok(any_running)
    }

    async fn describe_tuning_into_cache(&self, name: &str) -> Result<TuningJobDetail, ApiError> {
        let client = &self.aws().clients()?.sagemaker;
        let d = client
            .describe_hyper_parameter_tuning_job()
            .hyper_parameter_tuning_job_name(name)
            .send()
            .await
            .map_err(|e| from_sdk("SageMaker DescribeHyperParameterTuningJob", e))?;
        let config = d.hyper_parameter_tuning_job_config();
        let counters = d.training_job_status_counters();
        let best = d.best_training_job();
        let summary = TuningJobSummary {
            name: d.hyper_parameter_tuning_job_name().unwrap_or(name).to_string(),
            status: d.hyper_parameter_tuning_job_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
            strategy: config.and_then(|c| c.strategy()).map(|s| s.as_str().to_string()).unwrap_or_default(),
            objective: config
                .and_then(|c| c.hyper_parameter_tuning_job_objective())
                .map(|o| format!("{} {}", o.r#type().map(|t| t.as_str()).unwrap_or_default(), o.metric_name().unwrap_or_default()))
                .unwrap_or_default(),
            max_jobs: config.and_then(|c| c.resource_limits()).and_then(|r| r.max_number_of_training_jobs()).unwrap_or(0),
            max_parallel: config.and_then(|c| c.resource_limits()).and_then(|r| r.max_parallel_training_jobs()).unwrap_or(0),
            completed: counters.and_then(|c| c.completed()).unwrap_or(0),
            in_progress: counters.and_then(|c| c.in_progress()).unwrap_or(0),
            failed: counters.map(|c| c.retryable_error().unwrap_or(0) + c.non_retryable_error().unwrap_or(0) + c.stopped().unwrap_or(0)).unwrap_or(0),
            created_at: rfc3339(d.creation_time()),
            ended_at: rfc3339(d.hyper_parameter_tuning_end_time()),
            best_training_job: best.and_then(|b| b.training_job_name()).map(str::to_string),
            best_value: best.and_then(|b| b.final_hyper_parameter_tuning_job_objective_metric()).and_then(|m| m.value()).map(f64::from),
        };
        let mut ranges = Vec::new();
        if let Some(r) = config.and_then(|c| c.parameter_ranges()) {
            for c in r.continuous_parameter_ranges() {
                ranges.push(format!(
                    "{}: {} to {} ({})",
                    c.name().unwrap_or_default(),
                    c.min_value().unwrap_or_default(),
                    c.max_value().unwrap_or_default(),
                    c.scaling_type().map(|s| s.as_str()).unwrap_or("Auto")
                ));
            }
            for c in r.categorical_parameter_ranges() {
                ranges.push(format!("{}: one of {}", c.name().unwrap_or_default(), c.values().join(", ")));
            }
            for c in r.integer_parameter_ranges() {
                ranges.push(format!("{}: {} to {}", c.name().unwrap_or_default(), c.min_value().unwrap_or_default(), c.max_value().unwrap_or_default()));
            }
        }
        // An endpoint that does not implement the listing (moto) is not asked
        // again for a while: the poller would pay its retries every round.
        const TRIALS: &str = "SageMaker ListTrainingJobsForHyperParameterTuningJob";
        let known = self.aws().known_unsupported(TRIALS);
        let listed = match known {
            Some(error) => Err(error),
            None => client
                .list_training_jobs_for_hyper_parameter_tuning_job()
            .hyper_parameter_tuning_job_name(name)
            .sort_by(TrainingJobSortByOptions::FinalObjectiveMetricValue)
            .max_results(100)
            .send()
            .await
                .map_err(|e| self.aws().remember_unsupported(TRIALS, from_sdk(TRIALS, e))),
        };
        let (trials, trials_note) = match listed {
            Ok(list) => (
                list.training_job_summaries()
                    .iter()
                    .map(|t| {
                        let trial_name = t.training_job_name().unwrap_or_default().to_string();
                        let mut hyperparameters: Vec<(String, String)> =
                            t.tuned_hyper_parameters().map(|h| h.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
                        hyperparameters.sort();
                        TuningTrial {
                            best: summary.best_training_job.as_deref() == Some(trial_name.as_str()),
                            name: trial_name,
                            status: t.training_job_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                            hyperparameters,
                            objective_value: t.final_hyper_parameter_tuning_job_objective_metric().and_then(|m| m.value()).map(f64::from),
                        }
                    })
                    .collect(),
                None,
            ),
            Err(e) => (Vec::new(), Some(e.message().to_string())),
        };
        let detail = TuningJobDetail { summary, ranges, trials, trials_note, failure_reason: d.failure_reason().map(str::to_string) };
        sqlx::query(
            "INSERT INTO sagemaker_tuning_jobs (name, status, created_at, summary, detail, refreshed_at) VALUES (?, ?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
             ON CONFLICT (name) DO UPDATE SET status = excluded.status, created_at = excluded.created_at, summary = excluded.summary,
                detail = excluded.detail, refreshed_at = excluded.refreshed_at",
        )
        .bind(&detail.summary.name)
        .bind(&detail.summary.status)
        .bind(d.creation_time().map(created_key).or(detail.summary.created_at.clone()))
        .bind(serde_json::to_string(&detail.summary).unwrap_or_default())
        .bind(serde_json::to_string(&detail).unwrap_or_default())
        .execute(self.pool())
        .await
        .map_err(db)?;
        Ok(detail)
    }
}

#[async_trait::async_trait]
impl TuningService for SageMakerJobs {
    async fn list_tuning(&self, older: Option<Cursor>, filter: TuningFilter) -> Result<TuningJobPage, ApiError> {
        // Without AWS the cache is empty and the section says why (from the launch defaults).
        let filtered = |q: &mut QueryBuilder<'_, Sqlite>| {
            q.push(" WHERE 1 = 1");
            if !filter.status.is_empty() {
                q.push(" AND status = ").push_bind(filter.status.clone());
            }
            if !filter.name.is_empty() {
                q.push(" AND name LIKE ").push_bind(crate::store::contains_pattern(&filter.name)).push(" ESCAPE '\\'");
            }
        };
        let mut q = QueryBuilder::<Sqlite>::new("SELECT created_at, name, summary FROM sagemaker_tuning_jobs");
        filtered(&mut q);
        if let Some((t, name)) = older.map(|c| c.sagemaker_bound()) {
            q.push(" AND (created_at, name) < (").push_bind(t).push(", ").push_bind(name).push(")");
        }
        q.push(" ORDER BY created_at DESC, name DESC LIMIT ").push_bind((PAGE_SIZE + 1) as i64);
        let mut rows: Vec<(Option<String>, String, String)> = q.build_query_as().fetch_all(self.pool()).await.map_err(db)?;
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM sagemaker_tuning_jobs");
        filtered(&mut count);
        let total: i64 = count.build_query_scalar().fetch_one(self.pool()).await.map_err(db)?;
        let more = rows.len() > PAGE_SIZE;
        rows.truncate(PAGE_SIZE);
        let older = more.then(|| rows.last()).flatten().map(|(created_at, name, _)| {
            Cursor { created_at: created_at.clone().unwrap_or_default(), runs_on: RunsOn::SageMaker, key: name.clone() }.encode()
        });
        let jobs = rows.iter().filter_map(|(_, _, summary)| serde_json::from_str(summary).ok()).collect();
        Ok(TuningJobPage { jobs, total: total as u64, older })
    }

    async fn describe_tuning(&self, name: &TrainingJobName) -> Result<TuningJobDetail, ApiError> {
        let cached: Option<String> = sqlx::query_scalar("SELECT detail FROM sagemaker_tuning_jobs WHERE name = ?")
            .bind(name.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(db)?
            .flatten();
        match cached.and_then(|d| serde_json::from_str(&d).ok()) {
            Some(detail) => Ok(detail),
            None => self.describe_tuning_into_cache(name).await,
        }
    }

    async fn launch_tuning(&self, spec: TuningSpec) -> Result<TuningJobDetail, ApiError> {
        let clients = self.aws().clients()?;
        let client = &clients.sagemaker;
        let region = clients.config.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
        let base = &spec.base;
        // Every trial fetches Sagedeck's code from beside the tuning job's output.
        let trial = spec.trial();
        let source = match super::sagemaker::upload_source_dir(&clients.s3, &trial).await {
            Ok(source) => source,
            Err(e) => {
                self.journal_tuning(&spec, Err(e.message().to_string())).await;
                return Err(e);
            }
        };
        let definitions: Vec<MetricDefinition> =
            spec.metric_definitions().into_iter().map(|(name, regex)| MetricDefinition::builder().name(name).regex(regex).build()).collect();
        let mut definition = HyperParameterTrainingJobDefinition::builder()
            .algorithm_specification(
                HyperParameterAlgorithmSpecification::builder()
                    .training_image(&base.image)
                    .training_input_mode(TrainingInputMode::File)
                    .set_metric_definitions(Some(definitions))
                    .build(),
            )
            .role_arn(&base.role_arn)
            .output_data_config(OutputDataConfig::builder().s3_output_path(&base.output_s3).build())
            .resource_config(super::sagemaker::resource_config(base))
            .set_input_data_config(Some(super::sagemaker::input_channels(base)))
            .stopping_condition(StoppingCondition::builder().max_runtime_in_seconds(base.max_runtime_seconds as i32).build());
        for (k, v) in spec.static_hyperparameters(&region) {
            definition = definition.static_hyper_parameters(k, v);
        }
        let config = HyperParameterTuningJobConfig::builder()
            .strategy(HyperParameterTuningJobStrategyType::Bayesian)
            .hyper_parameter_tuning_job_objective(
                HyperParameterTuningJobObjective::builder()
                    .r#type(if spec.minimize() { HyperParameterTuningJobObjectiveType::Minimize } else { HyperParameterTuningJobObjectiveType::Maximize })
                    .metric_name(&spec.objective_metric)
                    .build(),
            )
            .resource_limits(ResourceLimits::builder().max_number_of_training_jobs(spec.max_jobs as i32).max_parallel_training_jobs(spec.max_parallel as i32).build())
            .parameter_ranges(
                ParameterRanges::builder()
                    .continuous_parameter_ranges(
                        ContinuousParameterRange::builder()
                            .name("lr")
                            .min_value(spec.lr_min.to_string())
                            .max_value(spec.lr_max.to_string())
                            .scaling_type(if spec.lr_log_scale { HyperParameterScalingType::Logarithmic } else { HyperParameterScalingType::Auto })
                            .build(),
                    )
                    .categorical_parameter_ranges(
                        CategoricalParameterRange::builder().name("batch-size").set_values(Some(spec.batch_sizes.iter().map(u32::to_string).collect())).build(),
                    )
                    .build(),
            )
            .build();
        let mut result = client
            .create_hyper_parameter_tuning_job()
            .hyper_parameter_tuning_job_name(&spec.name)
            .hyper_parameter_tuning_job_config(config)
            .training_job_definition(definition.build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| from_sdk("SageMaker CreateHyperParameterTuningJob", e));
        if let (Err(error), Some(at)) = (&result, &source) {
            let cleanup = match crate::s3::delete(&clients.s3, at).await {
                Ok(()) => format!("the code uploaded for it ({at}) was removed"),
                Err(e) => format!("the code uploaded for it ({at}) could not be removed: {}", e.message()),
            };
            result = Err(error.clone().map_message(|m| format!("{m}; {cleanup}")));
        }
        self.journal_tuning(&spec, result.clone().map_err(|e| e.message().to_string())).await;
        result?;
        let detail = self.describe_tuning_into_cache(&spec.name).await?;
        self.wake_poller();
        Ok(detail)
    }
}

impl SageMakerJobs {
    async fn journal_tuning(&self, spec: &TuningSpec, outcome: Result<(), String>) {
        let base = &spec.base;
        self.journal()
            .record(Change {
                backend: "aws",
                action: "training.sagemaker.tune",
                target: &spec.name,
                before: None,
                after: Some(format!(
                    "lr {}–{}{}, batch-size {:?}, {} {}, {} jobs ({} parallel) on {} × {}",
                    spec.lr_min,
                    spec.lr_max,
                    if spec.lr_log_scale { " (log)" } else { "" },
                    spec.batch_sizes,
                    if spec.minimize() { "minimise" } else { "maximise" },
                    spec.objective_metric,
                    spec.max_jobs,
                    spec.max_parallel,
                    base.instance_count,
                    base.instance_type
                )),
                outcome,
            })
            .await;
    }
}

//! SageMaker rollouts (UpdateEndpoint with a blue/green deployment
//! configuration: SageMaker shifts the traffic and rolls back when an alarm
//! fires; Sagedeck builds the new configuration, starts it, shows its
//! progress from DescribeEndpoint and records how it ended) and endpoint
//! alarms (CloudWatch's for SageMaker endpoints; for local endpoints,
//! Sagedeck's own, evaluated on its per-minute metrics the same way).

use super::sagemaker::{inference_container, VARIANT};
use super::{db, EndpointHub};
use crate::aws::from_sdk;
use crate::journal::{self, Change};
use crate::store::now;
use app::endpoints::guardrails::{
    evaluate, rollout_outcome, AlarmKind, AlarmSpec, DeploymentPlan, EndpointAlarm, SageMakerRolloutSpec, SageMakerRolloutView,
    SageMakerRollouts, VariantProgress,
};
use app::endpoints::Backend;
use app::ApiError;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
use aws_sdk_sagemaker::operation::describe_endpoint::DescribeEndpointOutput;
use aws_sdk_sagemaker::types::{
    Alarm, AutoRollbackConfig, BlueGreenUpdatePolicy, CapacitySize, CapacitySizeType, DeploymentConfig, ProductionVariant,
    ProductionVariantInstanceType, TrafficRoutingConfig, TrafficRoutingConfigType,
};
use aws_smithy_types::date_time::Format;

/// How long the account's alarm list is kept (see `EndpointHub::alarm_memo`).
const ALARM_MEMO: std::time::Duration = std::time::Duration::from_secs(20);

/// The deployment configuration UpdateEndpoint is sent.
fn deployment_config(plan: &DeploymentPlan) -> DeploymentConfig {
    let r = &plan.routing;
    let size = |p: u32| CapacitySize::builder().r#type(CapacitySizeType::CapacityPercent).value(p as i32).build();
    let mut routing = TrafficRoutingConfig::builder().r#type(TrafficRoutingConfigType::from(r.kind.as_str())).wait_interval_in_seconds(r.wait_seconds as i32);
    routing = match (r.kind.as_str(), r.capacity_percent) {
        ("CANARY", Some(p)) => routing.canary_size(size(p)),
        ("LINEAR", Some(p)) => routing.linear_step_size(size(p)),
        _ => routing,
    };
    let policy = BlueGreenUpdatePolicy::builder()
        .traffic_routing_configuration(routing.build())
        .termination_wait_in_seconds(plan.termination_wait_seconds as i32)
        .maximum_execution_timeout_in_seconds(plan.max_execution_seconds as i32)
        .build();
    let mut config = DeploymentConfig::builder().blue_green_update_policy(policy);
    if !plan.alarms.is_empty() {
        let alarms = plan.alarms.iter().fold(AutoRollbackConfig::builder(), |b, a| b.alarms(Alarm::builder().alarm_name(a).build()));
        config = config.auto_rollback_configuration(alarms.build());
    }
    config.build()
}

/// Names of the new model and configuration: the endpoint's name (cut to
/// fit SageMaker's 63 characters) and the time, as the SageMaker SDK names them.
fn version_name(endpoint: &str) -> String {
    let at = time::OffsetDateTime::now_utc();
    let stem: String = endpoint.chars().take(39).collect();
    format!(
        "{}-{:04}-{:02}-{:02}-{:02}-{:02}-{:02}-{:03}",
        stem.trim_end_matches('-'),
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

fn progress(e: &DescribeEndpointOutput) -> Vec<VariantProgress> {
    let Some(pending) = e.pending_deployment_summary() else { return Vec::new() };
    pending
        .production_variants()
        .iter()
        .map(|v| VariantProgress {
            variant: v.variant_name().unwrap_or_default().to_string(),
            instances: format!(
                "{} of {} × {}",
                v.current_instance_count().map(|n| n.to_string()).unwrap_or_else(|| "—".into()),
                v.desired_instance_count().map(|n| n.to_string()).unwrap_or_else(|| "—".into()),
                v.instance_type().map(|t| t.as_str()).unwrap_or("?")
            ),
            statuses: v
                .variant_status()
                .iter()
                .map(|s| {
                    (
                        s.status().map(|x| x.as_str().to_string()).unwrap_or_default(),
                        s.status_message().unwrap_or_default().to_string(),
                        s.start_time().and_then(|t| t.fmt(Format::DateTime).ok()),
                    )
                })
                .collect(),
        })
        .collect()
}

crate::store::sqlite_row! {
    /// A `sagemaker_rollouts` row as sqlx decodes it.
    struct StoredRollout {
        id: i64,
        from_config: String,
        to_config: String,
        source: String,
        instances: String,
        deployment: String,
        state: String,
        outcome: Option<String>,
        started_by: String,
        started_at: String,
        ended_at: Option<String>,
    }
}

impl From<StoredRollout> for SageMakerRolloutView {
    fn from(r: StoredRollout) -> Self {
        let plan: Option<DeploymentPlan> = serde_json::from_str(&r.deployment).ok();
        SageMakerRolloutView {
            id: r.id,
            from_config: r.from_config,
            to_config: r.to_config,
            source: r.source,
            instances: r.instances,
            plan: plan.map(|p| p.describe()).unwrap_or_default(),
            state: r.state,
            outcome: r.outcome,
            started_by: r.started_by,
            started_at: r.started_at,
            ended_at: r.ended_at,
        }
    }
}

fn actor() -> String {
    journal::current().map(|p| p.name).unwrap_or_else(|| "system".into())
}

impl EndpointHub {
    async fn describe_raw(&self, name: &str) -> Result<DescribeEndpointOutput, ApiError> {
        self.sagemaker.sm()?.describe_endpoint().endpoint_name(name).send().await.map_err(|e| from_sdk("SageMaker DescribeEndpoint", e))
    }

    /// Reads the endpoint and records the end of each of its rollouts that
    /// DescribeEndpoint shows has ended; answers whether one is still open.
    async fn settle_sagemaker(&self, name: &str) -> Result<(DescribeEndpointOutput, bool), ApiError> {
        let e = self.describe_raw(name).await?;
        let status = e.endpoint_status().map(|s| s.as_str().to_string()).unwrap_or_default();
        let config = e.endpoint_config_name().unwrap_or_default().to_string();
        let failure = e.failure_reason().map(str::to_string);
        let open: Vec<(i64, String, String)> = sqlx::query_as("SELECT id, from_config, to_config FROM sagemaker_rollouts WHERE endpoint = ? AND state = 'updating' ORDER BY id DESC")
            .bind(name)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut still_open = false;
        for (id, from, to) in open {
            if let Some((state, outcome)) = rollout_outcome(&status, &config, &from, &to, failure.as_deref()) {
                sqlx::query("UPDATE sagemaker_rollouts SET state = ?, outcome = ?, ended_at = ? WHERE id = ? AND state = 'updating'")
                    .bind(state)
                    .bind(&outcome)
                    .bind(now())
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(db)?;
                self.journal
                    .record(Change {
                        backend: "aws",
                        action: "endpoint.sagemaker.rollout.end",
                        target: name,
                        before: Some(format!("rollout #{id}: {from} → {to}")),
                        after: Some(outcome.clone()),
                        outcome: if state == "completed" { Ok(()) } else { Err(outcome.clone()) },
                    })
                    .await;
            } else {
                still_open = true;
            }
        }
        Ok((e, still_open))
    }

    /// Follows a SageMaker rollout from the server (not only while its page
    /// is open), so its end is recorded and journaled when SageMaker ends
    /// it: DescribeEndpoint every 20 s, for at most SageMaker's 8-hour limit
    /// and a margin.
    pub fn follow_sagemaker(&self, name: &str) {
        let Some(hub) = self.me.upgrade() else { return };
        let name = name.to_string();
        let span = tracing::info_span!("sagemaker_rollout", endpoint = %name);
        tokio::spawn(tracing::Instrument::instrument(async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(u64::from(app::endpoints::guardrails::MAX_EXECUTION_SECONDS) + 3600);
            while std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_secs(20)).await;
                match hub.settle_sagemaker(&name).await {
                    Ok((_, true)) => continue,
                    Ok((_, false)) => break,
                    Err(ApiError::NotFound(_) | ApiError::NotConfigured(_)) => break,
                    Err(e) => tracing::warn!(endpoint = %name, error = %e.message(), "cannot read the endpoint's rollout; trying again"),
                }
            }
        }, span));
    }

    /// At start: follow every SageMaker rollout that was still open.
    pub async fn follow_open_sagemaker_rollouts(&self) {
        let open: Vec<String> = sqlx::query_scalar("SELECT DISTINCT endpoint FROM sagemaker_rollouts WHERE state = 'updating'")
            .fetch_all(&self.pool)
            .await
            .unwrap_or_default();
        for name in open {
            self.follow_sagemaker(&name);
        }
    }

    /// A SageMaker endpoint's rollouts (an ended one recorded as DescribeEndpoint shows it) and its alarms.
    pub async fn sagemaker_rollouts_view(&self, name: &str) -> Result<SageMakerRollouts, ApiError> {
        let (e, _) = self.settle_sagemaker(name).await?;
        let status = e.endpoint_status().map(|s| s.as_str().to_string()).unwrap_or_default();
        let config = e.endpoint_config_name().unwrap_or_default().to_string();
        let failure = e.failure_reason().map(str::to_string);
        let rows: Vec<StoredRollout> = sqlx::query_as(
            "SELECT id, from_config, to_config, source, instances, deployment, state, outcome, started_by, started_at, ended_at
             FROM sagemaker_rollouts WHERE endpoint = ? ORDER BY id DESC LIMIT 10",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let rollouts: Vec<SageMakerRolloutView> = rows.into_iter().map(SageMakerRolloutView::from).collect();
        let previous_config = rollouts.iter().find(|r| r.state == "completed").filter(|r| r.to_config == config).map(|r| r.from_config.clone());
        let (alarms, alarms_note) = match self.endpoint_alarms(Backend::SageMaker, name).await {
            Ok(a) => (a, None),
            Err(e) => (Vec::new(), Some(format!("the alarms could not be listed: {}", e.message()))),
        };
        Ok(SageMakerRollouts { endpoint: name.to_string(), status, config, failure, progress: progress(&e), rollouts, previous_config, alarms, alarms_note })
    }

    /// UpdateEndpoint to a new configuration (a new model from a training
    /// job, or the live one on other instances) with the plan's blue/green
    /// deployment configuration. What it made is deleted again if SageMaker
    /// refuses the update, and the error says so.
    pub async fn begin_sagemaker_rollout(&self, spec: SageMakerRolloutSpec) -> Result<SageMakerRollouts, ApiError> {
        let clients = self.sagemaker.aws.clients()?;
        let sm = &clients.sagemaker;
        let name = spec.endpoint.as_str();
        let e = self.describe_raw(name).await?;
        let status = e.endpoint_status().map(|s| s.as_str()).unwrap_or_default();
        if status != "InService" {
            return Err(ApiError::Conflict(format!("endpoint {name} is {status}: SageMaker takes one update at a time, when the endpoint is InService")));
        }
        let from_config = e.endpoint_config_name().unwrap_or_default().to_string();
        let described = sm
            .describe_endpoint_config()
            .endpoint_config_name(&from_config)
            .send()
            .await
            .map_err(|e| from_sdk("SageMaker DescribeEndpointConfig", e))?;
        let live = described
            .production_variants()
            .first()
            .ok_or_else(|| ApiError::Conflict(format!("configuration {from_config} has no production variant to replace")))?;
        let variant = live.variant_name().unwrap_or(VARIANT).to_string();
        let live_model = live.model_name().unwrap_or_default().to_string();
        let live_type = live.instance_type().map(|t| t.as_str().to_string()).unwrap_or_default();
        let live_count = e
            .production_variants()
            .iter()
            .find(|v| v.variant_name() == Some(variant.as_str()))
            .and_then(|v| v.current_instance_count())
            .or(live.initial_instance_count())
            .unwrap_or(1)
            .max(1) as u32;
        let instance_type = spec.instance_type.clone().unwrap_or(live_type.clone());
        let instances = spec.instance_count.unwrap_or(live_count);
        let plan = spec.plan(instances)?;
        let job = spec.training_job.trim();
        if job.is_empty() && spec.local_job.is_none() && instance_type == live_type && instances == live_count {
            return Err(ApiError::Conflict(format!(
                "nothing would change: {name} already serves its model on {live_count} × {live_type}; name a training job or other instances"
            )));
        }
        if !plan.alarms.is_empty() {
            let found = clients.cloudwatch.describe_alarms().set_alarm_names(Some(plan.alarms.clone())).send().await.map_err(|e| from_sdk("CloudWatch DescribeAlarms", e))?;
            let known: Vec<&str> = found.metric_alarms().iter().filter_map(|a| a.alarm_name()).collect();
            if let Some(missing) = plan.alarms.iter().find(|a| !known.contains(&a.as_str())) {
                return Err(ApiError::Invalid(format!("alarm {missing} does not exist in CloudWatch: create it in the Alarms section first")));
            }
        }
        let next = version_name(name);
        let region = clients.config.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
        let mut made_model: Option<String> = None;
        let mut made_config = false;
        let mut uploaded: Option<crate::s3::S3Uri> = None;
        let result: Result<(), ApiError> = async {
            let model = if job.is_empty() && spec.local_job.is_none() {
                live_model.clone()
            } else {
                // The same serving image and role as the live model; the job's artifact.
                let (artifact, job_role) = match spec.local_job {
                    Some(id) => {
                        let dir = self.local_artifact(id).await?;
                        let target = app::endpoints::SageMakerDeploySpec {
                            name: next.clone(),
                            training_job: String::new(),
                            local_job: Some(id),
                            model_s3: spec.model_s3.clone(),
                            image: String::new(),
                            role_arn: String::new(),
                            instance_type: instance_type.clone(),
                            instance_count: instances,
                        };
                        let at = self.sagemaker.upload_local_model(&dir, &target).await?;
                        uploaded = Some(at.clone());
                        (at.to_string(), String::new())
                    }
                    None => self.sagemaker.job_model(job).await?,
                };
                let current = sm.describe_model().model_name(&live_model).send().await.map_err(|e| from_sdk("SageMaker DescribeModel", e))?;
                let image = current.primary_container().and_then(|c| c.image()).map(str::to_string).unwrap_or_else(|| super::sagemaker::pytorch_inference_image(&region));
                let role = current.execution_role_arn().map(str::to_string).unwrap_or(job_role);
                sm.create_model()
                    .model_name(&next)
                    .execution_role_arn(role)
                    .primary_container(inference_container(&image, &artifact, &region))
                    .send()
                    .await
                    .map_err(|e| from_sdk("SageMaker CreateModel", e))?;
                made_model = Some(next.clone());
                next.clone()
            };
            sm.create_endpoint_config()
                .endpoint_config_name(&next)
                .production_variants(
                    ProductionVariant::builder()
                        .variant_name(&variant)
                        .model_name(&model)
                        .instance_type(ProductionVariantInstanceType::from(instance_type.as_str()))
                        .initial_instance_count(instances as i32)
                        .initial_variant_weight(1.0)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| from_sdk("SageMaker CreateEndpointConfig", e))?;
            made_config = true;
            sm.update_endpoint()
                .endpoint_name(name)
                .endpoint_config_name(&next)
                .deployment_config(deployment_config(&plan))
                .send()
                .await
                .map_err(|e| from_sdk("SageMaker UpdateEndpoint", e))?;
            Ok(())
        }
        .await;
        let source = match (spec.local_job, job.is_empty()) {
            (Some(id), _) => format!("local job #{id}"),
            (None, true) => format!("the live model {live_model}"),
            (None, false) => format!("SageMaker job {job}"),
        };
        let before = format!("{from_config} ({live_model} on {live_count} × {live_type})");
        let after = format!("{next} ({source} on {instances} × {instance_type}): {}", plan.describe());
        let result = match result {
            Ok(()) => Ok(()),
            Err(error) => {
                let mut undone = Vec::new();
                if made_config && sm.delete_endpoint_config().endpoint_config_name(&next).send().await.is_ok() {
                    undone.push(format!("endpoint configuration {next}"));
                }
                if let Some(model) = &made_model {
                    if sm.delete_model().model_name(model).send().await.is_ok() {
                        undone.push(format!("model {model}"));
                    }
                }
                if let Some(at) = &uploaded {
                    if crate::s3::delete(&clients.s3, at).await.is_ok() {
                        undone.push(format!("the model.tar.gz it uploaded ({at})"));
                    }
                }
                Err(if undone.is_empty() {
                    error.map_message(|m| format!("{m} Nothing was changed: {from_config} serves."))
                } else {
                    error.map_message(|m| format!("{m} Nothing was changed ({from_config} serves); Sagedeck deleted what it had made: {}.", undone.join(" and ")))
                })
            }
        };
        self.journal
            .record(Change {
                backend: "aws",
                action: "endpoint.sagemaker.rollout",
                target: name,
                before: Some(before),
                after: Some(after),
                outcome: result.as_ref().map(|_| ()).map_err(|e| e.message().to_string()),
            })
            .await;
        result?;
        self.started_sagemaker(name, (&from_config, &next), made_model.as_deref(), &source, &format!("{instances} × {instance_type}"), &plan).await
    }

    /// Records a started UpdateEndpoint (`configs`: from, to), follows it, answers the page.
    async fn started_sagemaker(
        &self,
        name: &str,
        configs: (&str, &str),
        model: Option<&str>,
        source: &str,
        instances: &str,
        plan: &DeploymentPlan,
    ) -> Result<SageMakerRollouts, ApiError> {
        sqlx::query(
            "INSERT INTO sagemaker_rollouts (endpoint, from_config, to_config, model, source, instances, deployment, state, started_by, started_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, 'updating', ?, ?)",
        )
        .bind(name)
        .bind(configs.0)
        .bind(configs.1)
        .bind(model)
        .bind(source)
        .bind(instances)
        .bind(serde_json::to_string(plan).unwrap_or_default())
        .bind(actor())
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        self.follow_sagemaker(name);
        self.sagemaker_rollouts_view(name).await
    }

    /// UpdateEndpoint back to the configuration the last completed rollout
    /// replaced (still there: Sagedeck deletes no configuration it rolled
    /// out from), all at once.
    pub async fn sagemaker_rollback(&self, name: &str) -> Result<SageMakerRollouts, ApiError> {
        let view = self.sagemaker_rollouts_view(name).await?;
        if view.status != "InService" {
            return Err(ApiError::Conflict(format!(
                "endpoint {name} is {}: SageMaker is still deploying, and its alarms roll it back; roll back once it is InService",
                view.status
            )));
        }
        let Some(previous) = view.previous_config.clone() else {
            return Err(ApiError::Conflict(format!("no rollout of Sagedeck's put {} on {name}, so there is no earlier configuration to go back to", view.config)));
        };
        let plan = SageMakerRolloutSpec {
            endpoint: name.to_string(),
            training_job: String::new(),
            local_job: None,
            model_s3: String::new(),
            instance_type: None,
            instance_count: None,
            shift: app::endpoints::rollout::Shift::AllAtOnce,
            bake_seconds: 0,
            termination_wait_seconds: 0,
            alarms: Vec::new(),
        }
        .plan(1)?;
        let result = self
            .sagemaker
            .sm()?
            .update_endpoint()
            .endpoint_name(name)
            .endpoint_config_name(&previous)
            .deployment_config(deployment_config(&plan))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| from_sdk("SageMaker UpdateEndpoint", e));
        self.journal
            .record(Change {
                backend: "aws",
                action: "endpoint.sagemaker.rollback",
                target: name,
                before: Some(view.config.clone()),
                after: Some(format!("{previous} ({})", plan.describe())),
                outcome: result.as_ref().map(|_| ()).map_err(|e| e.message().to_string()),
            })
            .await;
        result?;
        self.started_sagemaker(name, (&view.config, &previous), None, &format!("rollback to {previous}"), "", &plan).await
    }

    /// The endpoint's alarms: every CloudWatch metric alarm on its
    /// EndpointName (made by Sagedeck or not); a local endpoint's own.
    pub async fn endpoint_alarms(&self, backend: Backend, name: &str) -> Result<Vec<EndpointAlarm>, ApiError> {
        match backend {
            Backend::Local => self.local_alarms(name).await,
            Backend::SageMaker => {
                let memo = self.alarm_memo.lock().expect("alarm memo").clone();
                if let Some((read, all)) = memo.filter(|(read, _)| read.elapsed() < ALARM_MEMO) {
                    tracing::trace!(age_ms = read.elapsed().as_millis() as u64, "alarms from the memo");
                    return Ok(all.into_iter().filter(|(e, _)| e == name).map(|(_, a)| a).collect());
                }
                let cloudwatch = &self.sagemaker.aws.clients()?.cloudwatch;
                let mut alarms: Vec<(String, EndpointAlarm)> = Vec::new();
                let mut token: Option<String> = None;
                loop {
                    let page = cloudwatch.describe_alarms().set_next_token(token.clone()).max_records(100).send().await.map_err(|e| from_sdk("CloudWatch DescribeAlarms", e))?;
                    for a in page.metric_alarms() {
                        let on = a.dimensions().iter().find(|d| d.name() == Some("EndpointName")).and_then(|d| d.value());
                        let Some(endpoint) = on.filter(|_| a.namespace() == Some("AWS/SageMaker")) else { continue };
                        let statistic = a.extended_statistic().map(str::to_string).or(a.statistic().map(|s| s.as_str().to_string())).unwrap_or_default();
                        let alarm_name = a.alarm_name().unwrap_or_default().to_string();
                        alarms.push((endpoint.to_string(), EndpointAlarm {
                            ours: alarm_name.starts_with("sagedeck-"),
                            description: format!(
                                "{} {statistic} > {} in {} of {} periods of {} s",
                                a.metric_name().unwrap_or_default(),
                                a.threshold().unwrap_or_default(),
                                a.datapoints_to_alarm().or(a.evaluation_periods()).unwrap_or(1),
                                a.evaluation_periods().unwrap_or(1),
                                a.period().unwrap_or(60)
                            ),
                            state: a.state_value().map(|s| s.as_str().to_string()).unwrap_or_default(),
                            reason: a.state_reason().unwrap_or_default().to_string(),
                            updated_at: a.state_updated_timestamp().and_then(|t| t.fmt(Format::DateTime).ok()),
                            name: alarm_name,
                        }));
                    }
                    token = page.next_token().map(str::to_string);
                    if token.is_none() {
                        break;
                    }
                }
                alarms.sort_by(|a, b| a.1.name.cmp(&b.1.name));
                *self.alarm_memo.lock().expect("alarm memo") = Some((std::time::Instant::now(), alarms.clone()));
                Ok(alarms.into_iter().filter(|(e, _)| e == name).map(|(_, a)| a).collect())
            }
        }
    }

    async fn local_alarms(&self, name: &str) -> Result<Vec<EndpointAlarm>, ApiError> {
        self.row(name).await?;
        let specs: Vec<String> = sqlx::query_scalar("SELECT spec FROM local_alarms WHERE endpoint = ? ORDER BY kind").bind(name).fetch_all(&self.pool).await.map_err(db)?;
        let mut alarms = Vec::new();
        for spec in specs {
            let Ok(spec) = serde_json::from_str::<AlarmSpec>(&spec) else { continue };
            let periods = self.metrics.alarm_periods(name, i64::from(spec.period_seconds), i64::from(spec.evaluation_periods)).await?;
            let values: Vec<Option<f64>> = periods
                .iter()
                .map(|p| p.map(|(rate, latency_us)| match spec.kind {
                    AlarmKind::ErrorRate => rate,
                    AlarmKind::LatencyP99 => latency_us,
                }))
                .collect();
            let (state, reason) = evaluate(&values, spec.metric_threshold(), spec.evaluation_periods, spec.datapoints_to_alarm);
            let measure = match spec.kind {
                AlarmKind::ErrorRate => "Invocation5XXErrors / Invocations per period",
                AlarmKind::LatencyP99 => "the highest ModelLatency per period (Sagedeck keeps per-minute maxima, not percentiles), µs",
            };
            alarms.push(EndpointAlarm {
                name: spec.name(),
                description: format!("{} · evaluated by Sagedeck on {measure}", spec.describe()),
                state: state.to_string(),
                reason,
                updated_at: Some(now()),
                ours: true,
            });
        }
        Ok(alarms)
    }

    /// Creates or replaces the endpoint's alarm of that kind.
    pub async fn put_endpoint_alarm(&self, backend: Backend, spec: AlarmSpec) -> Result<Vec<EndpointAlarm>, ApiError> {
        let name = spec.endpoint.clone();
        let result = match backend {
            Backend::Local => {
                self.row(&name).await?;
                sqlx::query("INSERT OR REPLACE INTO local_alarms (endpoint, kind, spec, created_by, created_at) VALUES (?, ?, ?, ?, ?)")
                    .bind(&name)
                    .bind(format!("{:?}", spec.kind))
                    .bind(serde_json::to_string(&spec).unwrap_or_default())
                    .bind(actor())
                    .bind(now())
                    .execute(&self.pool)
                    .await
                    .map(|_| ())
                    .map_err(db)
            }
            Backend::SageMaker => {
                let e = self.describe_raw(&name).await?;
                let variant = e.production_variants().first().and_then(|v| v.variant_name()).unwrap_or(VARIANT).to_string();
                let cloudwatch = &self.sagemaker.aws.clients()?.cloudwatch;
                let dimension = |k: &str, v: &str| Dimension::builder().name(k).value(v).build();
                let mut put = cloudwatch
                    .put_metric_alarm()
                    .alarm_name(spec.name())
                    .alarm_description(format!("Made by Sagedeck for endpoint {name}: {}", spec.describe()))
                    .namespace("AWS/SageMaker")
                    .dimensions(dimension("EndpointName", &name))
                    .dimensions(dimension("VariantName", &variant))
                    .period(spec.period_seconds as i32)
                    .evaluation_periods(spec.evaluation_periods as i32)
                    .datapoints_to_alarm(spec.datapoints_to_alarm as i32)
                    .threshold(spec.metric_threshold())
                    .comparison_operator(ComparisonOperator::GreaterThanThreshold)
                    // An endpoint without traffic is not failing.
                    .treat_missing_data("notBreaching");
                put = match spec.kind {
                    AlarmKind::ErrorRate => put.metric_name("Invocation5XXErrors").statistic(Statistic::Average),
                    AlarmKind::LatencyP99 => put.metric_name("ModelLatency").extended_statistic("p99"),
                };
                put.send().await.map(|_| ()).map_err(|e| from_sdk("CloudWatch PutMetricAlarm", e))
            }
        };
        self.journal
            .record(Change {
                backend: match backend {
                    Backend::Local => "local",
                    Backend::SageMaker => "aws",
                },
                action: "endpoint.alarm.put",
                target: &name,
                before: None,
                after: Some(format!("{}: {}", spec.name(), spec.describe())),
                outcome: result.as_ref().map(|_| ()).map_err(|e| e.message().to_string()),
            })
            .await;
        result?;
        *self.alarm_memo.lock().expect("alarm memo") = None;
        self.endpoint_alarms(backend, &name).await
    }
}

//! A new notebook instance: the form's spec, checked before any AWS call, and
//! the idle auto-stop lifecycle script Sagedeck offers with it.

use super::pricing;
use crate::names::{is_role_arn, LifecycleConfigName, NotebookName};
use crate::ApiError;
use serde::{Deserialize, Serialize};

/// SageMaker's bounds on a notebook's ML storage volume, in GB.
pub const VOLUME_GB: std::ops::RangeInclusive<u32> = 5..=16384;
/// The idle periods the auto-stop script accepts, in minutes.
pub const IDLE_MINUTES: std::ops::RangeInclusive<u32> = 10..=1440;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotebookSpec {
    pub name: String,
    pub instance_type: String,
    /// An IAM role SageMaker may assume.
    pub role_arn: String,
    pub volume_size_gb: u32,
    /// An existing lifecycle configuration by name; empty for none.
    #[serde(default)]
    pub lifecycle_config: String,
    /// Attach Sagedeck's idle auto-stop script: stop after this many minutes
    /// without Jupyter activity. Ignored when `lifecycle_config` is given.
    #[serde(default)]
    pub idle_stop_minutes: Option<u32>,
}

impl NotebookSpec {
    /// The seeds' choice: the cheapest general-purpose type, 5 GB.
    pub fn example(role_arn: String) -> NotebookSpec {
        NotebookSpec {
            name: String::new(),
            instance_type: "ml.t3.medium".into(),
            role_arn,
            volume_size_gb: 5,
            lifecycle_config: String::new(),
            idle_stop_minutes: Some(60),
        }
    }

    /// Every problem, named by field.
    pub fn validate(&self) -> Result<(), ApiError> {
        let mut problems = Vec::new();
        if let Err(e) = NotebookName::parse(&self.name) {
            problems.push(format!("name: {}", e.message()));
        }
        if pricing::hourly_usd(&self.instance_type).is_none() {
            problems.push(format!(
                "instance_type: {:?} is not a notebook instance type Sagedeck knows (one of {}).",
                self.instance_type,
                pricing::instance_types().collect::<Vec<_>>().join(", ")
            ));
        }
        if !is_role_arn(&self.role_arn) {
            problems.push(format!("role_arn: {:?} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME).", self.role_arn));
        }
        if !VOLUME_GB.contains(&self.volume_size_gb) {
            problems.push(format!("volume_size_gb: {} GB is outside SageMaker's {}–{} GB.", self.volume_size_gb, VOLUME_GB.start(), VOLUME_GB.end()));
        }
        if !self.lifecycle_config.is_empty() && LifecycleConfigName::parse(&self.lifecycle_config).is_err() {
            problems.push(format!("lifecycle_config: {:?} is not a lifecycle configuration name.", self.lifecycle_config));
        }
        if let Some(m) = self.idle_stop_minutes {
            if !IDLE_MINUTES.contains(&m) {
                problems.push(format!("idle_stop_minutes: {m} is outside {}–{} minutes.", IDLE_MINUTES.start(), IDLE_MINUTES.end()));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(problems.join(" ")))
        }
    }

    /// The lifecycle configuration the notebook gets: the operator's, or
    /// Sagedeck's idle auto-stop one, or none.
    pub fn lifecycle(&self) -> Option<String> {
        if !self.lifecycle_config.is_empty() {
            return Some(self.lifecycle_config.clone());
        }
        self.idle_stop_minutes.map(idle_stop_config_name)
    }
}

/// One lifecycle configuration per idle period, shared by the notebooks
/// that use it: `sagedeck-idle-stop-60min`.
pub fn idle_stop_config_name(minutes: u32) -> String {
    format!("sagedeck-idle-stop-{minutes}min")
}

/// The idle check the OnStart script installs (Python 3, standard library
/// only). Jupyter on a notebook instance listens on https://localhost:8443;
/// the notebook is idle when no kernel is busy and neither kernels nor
/// terminals have been active for the period (a freshly started notebook
/// counts from its start). It stops itself with the AWS CLI, so its role
/// needs sagemaker:StopNotebookInstance on itself.
pub const IDLE_CHECK_PY: &str = r#"import datetime, json, os, ssl, subprocess, sys, urllib.request

idle_seconds = int(sys.argv[1]) * 60
started_file = "/home/ec2-user/.sagedeck-idle-started"
now = datetime.datetime.now(datetime.timezone.utc)
if not os.path.exists(started_file):
    with open(started_file, "w") as f:
        f.write(now.isoformat())
with open(started_file) as f:
    latest = datetime.datetime.fromisoformat(f.read().strip())

context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE

def read(path):
    with urllib.request.urlopen("https://localhost:8443" + path, context=context, timeout=10) as answer:
        return json.load(answer)

def when(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))

try:
    kernels = read("/api/kernels")
    terminals = read("/api/terminals")
except Exception as error:
    print(f"{now.isoformat()} Jupyter did not answer ({error}); not stopping")
    sys.exit(0)
if any(k.get("execution_state") == "busy" for k in kernels):
    print(f"{now.isoformat()} a kernel is busy")
    sys.exit(0)
for item in kernels + terminals:
    if item.get("last_activity"):
        latest = max(latest, when(item["last_activity"]))
idle_for = (now - latest).total_seconds()
if idle_for < idle_seconds:
    print(f"{now.isoformat()} idle for {idle_for / 60:.0f} of {idle_seconds / 60:.0f} minutes")
    sys.exit(0)
with open("/opt/ml/metadata/resource-metadata.json") as f:
    name = json.load(f)["ResourceName"]
print(f"{now.isoformat()} idle for {idle_for / 60:.0f} minutes: stopping {name}")
subprocess.run(["aws", "sagemaker", "stop-notebook-instance", "--notebook-instance-name", name], check=True)
"#;

/// The OnStart script of the idle auto-stop configuration: writes the check
/// and runs it every 5 minutes from root's crontab.
pub fn idle_stop_on_start(minutes: u32) -> String {
    format!(
        "#!/bin/bash\n\
         # Sagedeck: stop this notebook instance after {minutes} minutes without Jupyter activity.\n\
         set -euo pipefail\n\
         rm -f /home/ec2-user/.sagedeck-idle-started\n\
         cat > /home/ec2-user/sagedeck-idle-check.py <<'PY'\n\
         {IDLE_CHECK_PY}PY\n\
         (crontab -l 2>/dev/null | grep -v sagedeck-idle-check; \
         echo \"*/5 * * * * /usr/bin/python3 /home/ec2-user/sagedeck-idle-check.py {minutes} >> /home/ec2-user/sagedeck-idle-check.log 2>&1\") | crontab -\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NotebookSpec {
        NotebookSpec { name: "research-1".into(), ..NotebookSpec::example("arn:aws:iam::123456789012:role/SageMakerNotebook".into()) }
    }

    #[test]
    fn a_good_spec_passes_and_each_bad_field_is_named() {
        assert!(spec().validate().is_ok());
        let cases: Vec<(NotebookSpec, &str)> = vec![
            (NotebookSpec { name: "bad name!".into(), ..spec() }, "name:"),
            (NotebookSpec { instance_type: "m5.large".into(), ..spec() }, "instance_type:"),
            (NotebookSpec { role_arn: "arn:aws:iam::123:role/x".into(), ..spec() }, "role_arn:"),
            (NotebookSpec { role_arn: "arn:aws:iam::123456789012:user/ana".into(), ..spec() }, "role_arn:"),
            (NotebookSpec { volume_size_gb: 4, ..spec() }, "volume_size_gb:"),
            (NotebookSpec { lifecycle_config: "no spaces".into(), ..spec() }, "lifecycle_config:"),
            (NotebookSpec { idle_stop_minutes: Some(5), ..spec() }, "idle_stop_minutes:"),
        ];
        for (bad, field) in cases {
            let message = bad.validate().unwrap_err().message().to_string();
            assert!(message.starts_with(field), "{field}: {message}");
        }
    }

    #[test]
    fn the_lifecycle_is_the_operators_or_the_idle_stop() {
        assert_eq!(spec().lifecycle().as_deref(), Some("sagedeck-idle-stop-60min"));
        assert_eq!(NotebookSpec { lifecycle_config: "mine".into(), ..spec() }.lifecycle().as_deref(), Some("mine"));
        assert_eq!(NotebookSpec { idle_stop_minutes: None, ..spec() }.lifecycle(), None);
    }

    #[test]
    fn the_on_start_script_holds_the_check_and_its_period() {
        let script = idle_stop_on_start(45);
        assert!(script.starts_with("#!/bin/bash\n"));
        assert!(script.contains("sagedeck-idle-check.py 45 >>"));
        assert!(script.contains(IDLE_CHECK_PY));
        assert!(script.contains("\nPY\n"), "the heredoc ends on a line of its own");
        // SageMaker's limit for a lifecycle script (base64-encoded): 16,384 characters.
        assert!(script.len() * 4 / 3 + 4 < 16_384, "{} bytes", script.len());
    }
}

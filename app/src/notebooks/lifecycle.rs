//! Which notebook statuses allow which change, and what a valid name is.
//! Checked before any AWS call so the user gets a precise message instead of
//! SageMaker's generic ValidationException.


/// A notebook's status as SageMaker reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotebookStatus {
    Pending,
    InService,
    Stopping,
    Stopped,
    Failed,
    Deleting,
    Updating,
    Other(String),
}

impl NotebookStatus {
    pub fn parse(status: &str) -> Self {
        match status {
            "Pending" => Self::Pending,
            "InService" => Self::InService,
            "Stopping" => Self::Stopping,
            "Stopped" => Self::Stopped,
            "Failed" => Self::Failed,
            "Deleting" => Self::Deleting,
            "Updating" => Self::Updating,
            other => Self::Other(other.to_string()),
        }
    }

    /// A notebook bills while it is in these states.
    pub fn is_billing(&self) -> bool {
        matches!(self, Self::Pending | Self::InService | Self::Updating)
    }

    /// On its way to another status; SageMaker will change it without us.
    pub fn is_transitional(&self) -> bool {
        matches!(self, Self::Pending | Self::Stopping | Self::Updating | Self::Deleting)
    }

    /// The colour family of its badge.
    pub fn tone(&self) -> &'static str {
        match self {
            _ if self.is_transitional() => "busy",
            Self::InService => "ok",
            Self::Failed => "bad",
            _ => "idle",
        }
    }
}

/// SageMaker starts only notebooks that are Stopped or Failed.
pub fn can_start(status: &NotebookStatus) -> Result<(), String> {
    match status {
        NotebookStatus::Stopped | NotebookStatus::Failed => Ok(()),
        NotebookStatus::InService => Err("it is already running (InService)".into()),
        other => Err(format!("it is {other:?}; wait until it is Stopped")),
    }
}

/// SageMaker stops only notebooks that are InService.
pub fn can_stop(status: &NotebookStatus) -> Result<(), String> {
    match status {
        NotebookStatus::InService => Ok(()),
        NotebookStatus::Stopped => Err("it is already Stopped".into()),
        other => Err(format!("it is {other:?}; only an InService notebook can be stopped")),
    }
}

/// SageMaker deletes only notebooks that are Stopped or Failed: a running
/// one is stopped first, by the operator, so kernels end on purpose.
pub fn can_delete(status: &NotebookStatus) -> Result<(), String> {
    match status {
        NotebookStatus::Stopped | NotebookStatus::Failed => Ok(()),
        NotebookStatus::InService => Err("it is running (InService); stop it first".into()),
        other => Err(format!("it is {other:?}; wait until it is Stopped")),
    }
}

/// JupyterLab opens only on a running notebook.
pub fn can_open(status: &NotebookStatus) -> Result<(), String> {
    match status {
        NotebookStatus::InService => Ok(()),
        other => Err(format!("it is {other:?}; start it and wait until it is InService")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_is_allowed_only_from_stopped_or_failed() {
        assert!(can_start(&NotebookStatus::Stopped).is_ok());
        assert!(can_start(&NotebookStatus::Failed).is_ok());
        for s in ["InService", "Pending", "Stopping", "Updating", "Deleting"] {
            assert!(can_start(&NotebookStatus::parse(s)).is_err(), "{s}");
        }
    }

    #[test]
    fn stop_is_allowed_only_in_service() {
        assert!(can_stop(&NotebookStatus::InService).is_ok());
        let err = can_stop(&NotebookStatus::Stopped).unwrap_err();
        assert!(err.contains("already Stopped"));
        assert!(can_stop(&NotebookStatus::Pending).is_err());
    }

    #[test]
    fn delete_needs_a_stopped_notebook_and_open_a_running_one() {
        assert!(can_delete(&NotebookStatus::Stopped).is_ok() && can_delete(&NotebookStatus::Failed).is_ok());
        assert!(can_delete(&NotebookStatus::InService).unwrap_err().contains("stop it first"));
        assert!(can_delete(&NotebookStatus::Stopping).is_err());
        assert!(can_open(&NotebookStatus::InService).is_ok());
        assert!(can_open(&NotebookStatus::Stopped).unwrap_err().contains("start it"));
    }

    #[test]
    fn unknown_statuses_survive_parsing() {
        assert_eq!(NotebookStatus::parse("Hibernating"), NotebookStatus::Other("Hibernating".into()));
        assert_eq!(NotebookStatus::parse("Hibernating").tone(), "idle");
    }

    #[test]
    fn transitional_states_are_busy() {
        for s in ["Pending", "Stopping", "Updating", "Deleting"] {
            let status = NotebookStatus::parse(s);
            assert!(status.is_transitional(), "{s}");
            assert_eq!(status.tone(), "busy");
        }
        assert!(!NotebookStatus::InService.is_transitional());
        assert_eq!(NotebookStatus::Failed.tone(), "bad");
    }

    #[test]
    fn billing_states() {
        assert!(NotebookStatus::InService.is_billing());
        assert!(!NotebookStatus::Stopped.is_billing());
    }
}

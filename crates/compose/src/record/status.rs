//! Where a run is in its life, spelled one way everywhere: the REST API, the history, the
//! WebSocket events and the web UI.

use serde::{Deserialize, Serialize};

/// Where a run is in its life. The values are the original's where it has them (`pending`,
/// `processing`, `completed`, `failed`); a run whose output is streaming is `processing`, as
/// there (whether it streams is the output's business, not the status's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    /// Running. (Histories written before this type recorded a streaming run as
    /// `streaming`: they read as this.)
    #[serde(alias = "streaming")]
    Processing,
    /// Waiting for a person to answer its interrupt points (spec §14).
    Interrupted,
    Cancelling,
    Cancelled,
    Completed,
    Failed,
}

impl Status {
    /// Every status, in the order of a run's life.
    pub const ALL: [Status; 7] = [
        Status::Pending,
        Status::Processing,
        Status::Interrupted,
        Status::Cancelling,
        Status::Cancelled,
        Status::Completed,
        Status::Failed,
    ];

    /// The run has ended: nothing about it changes any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Processing => "processing",
            Status::Interrupted => "interrupted",
            Status::Cancelling => "cancelling",
            Status::Cancelled => "cancelled",
            Status::Completed => "completed",
            Status::Failed => "failed",
        }
    }

    /// The status named `name` as the history stores it (`streaming` included, as written
    /// before there was one spelling).
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "streaming" => Some(Status::Processing),
            name => Self::ALL.into_iter().find(|status| status.as_str() == name),
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_has_one_spelling_in_json_and_in_the_history() {
        for status in Status::ALL {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, status.as_str());
            assert_eq!(serde_json::from_value::<Status>(json).unwrap(), status);
            assert_eq!(Status::named(status.as_str()), Some(status));
        }
        assert_eq!(Status::named("streaming"), Some(Status::Processing));
        let old: Status = serde_json::from_str("\"streaming\"").unwrap();
        assert_eq!(old, Status::Processing);
        assert_eq!(Status::named("running"), None);
    }
}

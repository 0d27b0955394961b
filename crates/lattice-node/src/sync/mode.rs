//! Which lung may carry sync: the operator's choice the schedule obeys.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which lung may carry sync. `Auto` lets the heartbeat decide.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Auto,
    P2p,
    Http,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Auto, Mode::P2p, Mode::Http];
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::P2p => "p2p",
            Mode::Http => "http",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| "is not a mode; expected one of auto, p2p, http".to_string())
    }
}

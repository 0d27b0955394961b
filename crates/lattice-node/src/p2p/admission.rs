//! Which P2P peers a node syncs with, decided the way Syncthing admits devices.
//!
//! On a closed ledger a peer is admitted if it is named by `LATTICE_P2P_ALLOW` or
//! `LATTICE_BOOTSTRAP` (an operator who typed its address meant it), if its key is an
//! author or administrator of the ledger now (so a demo cluster, whose nodes are its
//! authors, admits itself; and a removed author's machine stops being admitted), or if
//! a person accepted it (`lattice peers accept`, the app's prompt). Anyone else who
//! connects is pending: neither synced with nor counted, its gossip ignored and none
//! sent to it, shown with its PeerId and address until accepted or ignored. An ignored
//! peer is disconnected whenever it connects. Decisions are kept in the data directory
//! (`peers.json`), so they survive restarts. The open development ledger admits anyone.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use crate::identity::public_key_of;
use crate::ledger::Ledger;

/// The file in the data directory that keeps accepted and ignored peers.
pub const PEERS_FILE: &str = "peers.json";
/// The sync error kind a pending peer's requests are answered with.
pub const NOT_ADMITTED: &str = "not_admitted";
/// Most peers one list keeps, so a stream of new identities cannot grow the file
/// without bound (the oldest ignored are forgotten first; accepting beyond it is refused).
pub const MAX_DECIDED: usize = 4096;

/// Where a peer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Synced with and counted.
    Admitted,
    /// Connected, waiting for a person's decision.
    Pending,
    /// Disconnected whenever it connects.
    Ignored,
}

#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error("cannot keep the admission decision in {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a peers file this node wrote: {message}")]
    Malformed { path: PathBuf, message: String },
    #[error("already {MAX_DECIDED} accepted peers; ignore some before accepting more")]
    Full,
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Decisions {
    accepted: Vec<String>,
    ignored: Vec<String>,
}

/// The admission rules and the decisions people made.
#[derive(Debug)]
pub struct Admission {
    configured: BTreeSet<PeerId>,
    accepted: Vec<PeerId>,
    ignored: Vec<PeerId>,
    /// `None` keeps decisions in memory only (a node without a data directory file).
    file: Option<PathBuf>,
}

fn parse_all(list: &[String], path: &Path) -> Result<Vec<PeerId>, AdmissionError> {
    list.iter()
        .map(|s| {
            s.parse().map_err(|_| AdmissionError::Malformed {
                path: path.to_owned(),
                message: format!("{s:?} is not a PeerId"),
            })
        })
        .collect()
}

impl Admission {
    /// Loads the decisions kept in `dir` (none yet is fine). `configured` are the
    /// allow-listed and bootstrap peers.
    pub fn load(
        dir: Option<&Path>,
        configured: impl IntoIterator<Item = PeerId>,
    ) -> Result<Self, AdmissionError> {
        let file = dir.map(|d| d.join(PEERS_FILE));
        let decisions = match &file {
            Some(path) => match std::fs::read(path) {
                Ok(bytes) => serde_json::from_slice::<Decisions>(&bytes).map_err(|e| {
                    AdmissionError::Malformed {
                        path: path.clone(),
                        message: e.to_string(),
                    }
                })?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Decisions::default(),
                Err(source) => {
                    return Err(AdmissionError::Io {
                        path: path.clone(),
                        source,
                    });
                }
            },
            None => Decisions::default(),
        };
        let at = file.clone().unwrap_or_default();
        Ok(Admission {
            configured: configured.into_iter().collect(),
            accepted: parse_all(&decisions.accepted, &at)?,
            ignored: parse_all(&decisions.ignored, &at)?,
            file,
        })
    }

    pub fn standing(&self, ledger: &Ledger, peer: &PeerId) -> Standing {
        if ledger.is_open() {
            return Standing::Admitted;
        }
        if self.ignored.contains(peer) {
            return Standing::Ignored;
        }
        let member = public_key_of(peer)
            .is_some_and(|k| ledger.is_member(&k) || ledger.genesis().is_admin(&k));
        if member || self.configured.contains(peer) || self.accepted.contains(peer) {
            Standing::Admitted
        } else {
            Standing::Pending
        }
    }

    pub fn admits(&self, ledger: &Ledger, peer: &PeerId) -> bool {
        self.standing(ledger, peer) == Standing::Admitted
    }

    /// Accepts `peer` (it stops being ignored) and keeps the decision.
    pub fn accept(&mut self, peer: PeerId) -> Result<(), AdmissionError> {
        if !self.accepted.contains(&peer) {
            if self.accepted.len() >= MAX_DECIDED {
                return Err(AdmissionError::Full);
            }
            self.accepted.push(peer);
        }
        self.ignored.retain(|p| *p != peer);
        self.save()
    }

    /// Ignores `peer` (it stops being accepted) and keeps the decision. A configured or
    /// member peer is ignored too: a person's explicit decision wins over the rules.
    pub fn ignore(&mut self, peer: PeerId) -> Result<(), AdmissionError> {
        self.accepted.retain(|p| *p != peer);
        if !self.ignored.contains(&peer) {
            self.ignored.push(peer);
            if self.ignored.len() > MAX_DECIDED {
                self.ignored.remove(0);
            }
        }
        self.save()
    }

    pub fn accepted(&self) -> &[PeerId] {
        &self.accepted
    }
    pub fn ignored(&self) -> &[PeerId] {
        &self.ignored
    }

    /// Writes the decisions atomically (a temporary file renamed over the old one).
    fn save(&self) -> Result<(), AdmissionError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let decisions = Decisions {
            accepted: self.accepted.iter().map(ToString::to_string).collect(),
            ignored: self.ignored.iter().map(ToString::to_string).collect(),
        };
        let io = |source| AdmissionError::Io {
            path: path.clone(),
            source,
        };
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(&decisions).expect("decisions serialize");
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::NodeKey;
    use crate::ledger::Genesis;

    fn peer(n: u8) -> PeerId {
        NodeKey::from_seed([n; 32]).peer_id()
    }

    fn closed() -> Ledger {
        let author = NodeKey::from_seed([2; 32]).public_bytes();
        Ledger::new(
            Genesis::sign(
                &NodeKey::from_seed([1; 32]),
                "bank",
                false,
                &[author],
                &[],
                1,
            )
            .unwrap(),
        )
    }

    #[test]
    fn members_admins_and_configured_peers_are_admitted_and_strangers_pending() {
        let ledger = closed();
        let a = Admission::load(None, [peer(5)]).unwrap();
        assert_eq!(a.standing(&ledger, &peer(1)), Standing::Admitted, "admin");
        assert_eq!(a.standing(&ledger, &peer(2)), Standing::Admitted, "author");
        assert_eq!(
            a.standing(&ledger, &peer(5)),
            Standing::Admitted,
            "configured"
        );
        assert_eq!(a.standing(&ledger, &peer(9)), Standing::Pending);
        assert!(
            a.admits(&Ledger::default(), &peer(9)),
            "the dev ledger is open"
        );
    }

    #[test]
    fn decisions_survive_a_reload_and_the_latest_wins() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = closed();
        let mut a = Admission::load(Some(dir.path()), []).unwrap();
        a.accept(peer(9)).unwrap();
        a.ignore(peer(8)).unwrap();
        a.ignore(peer(2)).unwrap();
        let mut b = Admission::load(Some(dir.path()), []).unwrap();
        assert_eq!(b.standing(&ledger, &peer(9)), Standing::Admitted);
        assert_eq!(b.standing(&ledger, &peer(8)), Standing::Ignored);
        assert_eq!(
            b.standing(&ledger, &peer(2)),
            Standing::Ignored,
            "a person's decision wins over membership"
        );
        b.accept(peer(8)).unwrap();
        b.ignore(peer(9)).unwrap();
        let c = Admission::load(Some(dir.path()), []).unwrap();
        assert_eq!(c.standing(&ledger, &peer(8)), Standing::Admitted);
        assert_eq!(c.standing(&ledger, &peer(9)), Standing::Ignored);
    }

    #[test]
    fn a_damaged_peers_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(PEERS_FILE),
            b"{\"accepted\": [\"nope\"], \"ignored\": []}",
        )
        .unwrap();
        let err = Admission::load(Some(dir.path()), []).unwrap_err();
        assert!(err.to_string().contains(PEERS_FILE), "{err}");
        assert!(err.to_string().contains("nope"), "{err}");
    }
}

//! The app's state: its own node, the optional demo cluster, and which node the window
//! is watching.

use std::ops::RangeInclusive;

use lattice_node::demo::{CutCounter, DemoCluster, DemoOptions, TrafficOptions, TrafficStatus};
use lattice_node::node::NodeHandle;
use serde::Serialize;
use tokio::sync::{Mutex, watch};

/// How many nodes a demo cluster may have: two make a failover, more than twelve
/// in-process nodes crowd the graph and the machine.
pub const DEMO_NODES: RangeInclusive<usize> = 2..=12;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "a demo cluster has {min} to {max} nodes, not {got}",
        min = DEMO_NODES.start(),
        max = DEMO_NODES.end()
    )]
    InvalidNodes { got: usize },
    #[error("no demo cluster is running")]
    NotRunning,
    #[error("there is no demo node {0}")]
    NoSuchNode(usize),
    #[error("the demo cluster's data directory: {0}")]
    DataDir(std::io::Error),
    #[error("{0}")]
    Cluster(String),
    #[error(transparent)]
    Controller(#[from] lattice_node::demo::DemoError),
}

impl DemoError {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidNodes { .. } => "invalid_demo_nodes",
            Self::Controller(lattice_node::demo::DemoError::InvalidTraffic { .. }) => {
                "invalid_demo_traffic"
            }
            Self::NotRunning
            | Self::NoSuchNode(_)
            | Self::DataDir(_)
            | Self::Cluster(_)
            | Self::Controller(_) => "demo",
        }
    }
}

/// A running cluster and the temporary directory holding its ledgers, removed with it.
struct Demo {
    cluster: DemoCluster,
    data_dir: tempfile::TempDir,
}

pub struct AppState {
    own: NodeHandle,
    demo: Mutex<Option<Demo>>,
    /// The node the window shows; commands act on it.
    focus: watch::Sender<NodeHandle>,
    focus_index: std::sync::Mutex<Option<usize>>,
}

#[derive(Serialize)]
pub struct DemoNodeInfo {
    pub name: String,
    pub url: String,
    pub peer_id: String,
    pub status: lattice_node::status::Status,
}

#[derive(Serialize)]
pub struct DemoStatus {
    pub running: bool,
    /// Which demo node the window watches (`None`: this app's own node).
    pub focus: Option<usize>,
    pub nodes: Vec<DemoNodeInfo>,
    /// Where the cluster keeps its ledgers while it runs (removed when it stops).
    pub data_dir: Option<String>,
    /// The automatic traffic (none while no cluster runs).
    pub traffic: Option<TrafficStatus>,
    /// The last cut's counter: "written during the cut: N, delivered to X of Y nodes";
    /// none before the first cut of this cluster.
    pub cut: Option<CutCounter>,
}

/// A sample entry the presenter wrote, and on which demo node.
#[derive(Serialize)]
pub struct SampleWritten {
    pub node: String,
    pub peer_id: String,
    pub id: String,
    pub entry_count: usize,
}

impl AppState {
    pub fn new(own: NodeHandle) -> Self {
        Self {
            focus: watch::Sender::new(own.clone()),
            own,
            demo: Mutex::new(None),
            focus_index: std::sync::Mutex::new(None),
        }
    }

    /// This app's own node (not a demo node).
    pub fn own(&self) -> NodeHandle {
        self.own.clone()
    }

    pub fn focus_receiver(&self) -> watch::Receiver<NodeHandle> {
        self.focus.subscribe()
    }

    /// The node the window is watching.
    pub fn focused(&self) -> NodeHandle {
        self.focus.borrow().clone()
    }

    /// Watch a demo node (`Some(i)`) or this app's own node (`None`).
    pub async fn set_focus(&self, index: Option<usize>) -> Result<(), DemoError> {
        let demo = self.demo.lock().await;
        let node = match (index, demo.as_ref()) {
            (None, _) => self.own.clone(),
            (Some(i), Some(demo)) => demo
                .cluster
                .nodes
                .get(i)
                .map(|n| n.handle.clone())
                .ok_or(DemoError::NoSuchNode(i + 1))?,
            (Some(_), None) => return Err(DemoError::NotRunning),
        };
        *self.focus_index.lock().expect("not poisoned") = index;
        self.focus.send_replace(node);
        Ok(())
    }

    /// Starts a cluster of `nodes` (refused outside [`DEMO_NODES`]) in a fresh temporary
    /// directory, or keeps the one already running, and watches its first node.
    pub async fn demo_start(&self, nodes: usize) -> Result<DemoStatus, DemoError> {
        if !DEMO_NODES.contains(&nodes) {
            return Err(DemoError::InvalidNodes { got: nodes });
        }
        {
            let mut demo = self.demo.lock().await;
            if demo.is_none() {
                let data_dir = tempfile::Builder::new()
                    .prefix("lattice-app-demo-")
                    .tempdir()
                    .map_err(DemoError::DataDir)?;
                let options = DemoOptions {
                    nodes,
                    fast: true,
                    data_dir: data_dir.path().to_owned(),
                };
                let cluster = DemoCluster::start(&options)
                    .await
                    .map_err(|e| DemoError::Cluster(e.to_string()))?;
                *demo = Some(Demo { cluster, data_dir });
            }
        }
        // Watch the first demo node: its timers are compressed for the audience.
        self.set_focus(Some(0)).await?;
        Ok(self.demo_status().await)
    }

    pub async fn demo_cut(&self, cut: bool) -> Result<DemoStatus, DemoError> {
        {
            let demo = self.demo.lock().await;
            let cluster = &demo.as_ref().ok_or(DemoError::NotRunning)?.cluster;
            let result = if cut {
                cluster.cut_p2p().await
            } else {
                cluster.restore_p2p().await
            };
            result.map_err(|e| DemoError::Cluster(e.to_string()))?;
        }
        Ok(self.demo_status().await)
    }

    /// Automatic traffic on or off, at the default few entries a second.
    pub async fn demo_traffic(&self, on: bool) -> Result<DemoStatus, DemoError> {
        {
            let demo = self.demo.lock().await;
            let cluster = &demo.as_ref().ok_or(DemoError::NotRunning)?.cluster;
            cluster.set_traffic(on, TrafficOptions::default()).await?;
        }
        Ok(self.demo_status().await)
    }

    /// Writes a sample entry on the watched demo node (the first one while the window
    /// watches this app's own node), so the audience sees it start from the node on screen.
    pub async fn demo_sample(&self) -> Result<SampleWritten, DemoError> {
        let demo = self.demo.lock().await;
        let cluster = &demo.as_ref().ok_or(DemoError::NotRunning)?.cluster;
        let index = self.focus_index.lock().expect("not poisoned").unwrap_or(0);
        let appended = cluster.write_sample(index).await?;
        let node = &cluster.nodes[index];
        Ok(SampleWritten {
            node: node.name.clone(),
            peer_id: node.handle.peer_id().to_string(),
            id: appended.id.to_hex(),
            entry_count: appended.count,
        })
    }

    /// Stops the cluster's nodes (their commits finish first), then removes their ledgers.
    pub async fn demo_stop(&self) -> DemoStatus {
        let _ = self.set_focus(None).await;
        let demo = self.demo.lock().await.take();
        if let Some(Demo { cluster, data_dir }) = demo {
            cluster.shutdown().await;
            let path = data_dir.path().to_owned();
            if let Err(e) = data_dir.close() {
                log::warn!("could not remove the demo's data {}: {e}", path.display());
            }
        }
        self.demo_status().await
    }

    pub async fn demo_status(&self) -> DemoStatus {
        let demo = self.demo.lock().await;
        DemoStatus {
            running: demo.is_some(),
            focus: *self.focus_index.lock().expect("not poisoned"),
            data_dir: demo
                .as_ref()
                .map(|d| d.data_dir.path().display().to_string()),
            nodes: demo
                .as_ref()
                .map(|d| {
                    d.cluster
                        .nodes
                        .iter()
                        .map(|n| DemoNodeInfo {
                            name: n.name.clone(),
                            url: format!("http://{}/", n.http),
                            peer_id: n.handle.peer_id().to_string(),
                            status: n.handle.status(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            traffic: demo.as_ref().map(|d| d.cluster.traffic()),
            cut: demo.as_ref().and_then(|d| d.cluster.cut_counter()),
        }
    }

    /// Stops the demo cluster and the app's node (in-flight commits finish).
    pub async fn shutdown(&self) {
        self.demo_stop().await;
        self.own.shutdown().await;
    }
}

//! The app's state: its own node, the optional demo cluster, and which node the window
//! is watching.

use lattice_node::demo::{DemoCluster, DemoOptions};
use lattice_node::node::NodeHandle;
use serde::Serialize;
use tokio::sync::{Mutex, watch};

pub struct AppState {
    own: NodeHandle,
    demo: Mutex<Option<DemoCluster>>,
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

    pub fn focus_receiver(&self) -> watch::Receiver<NodeHandle> {
        self.focus.subscribe()
    }

    /// The node the window is watching.
    pub fn focused(&self) -> NodeHandle {
        self.focus.borrow().clone()
    }

    /// Watch a demo node (`Some(i)`) or this app's own node (`None`).
    pub async fn set_focus(&self, index: Option<usize>) -> Result<(), String> {
        let demo = self.demo.lock().await;
        let node = match (index, demo.as_ref()) {
            (None, _) => self.own.clone(),
            (Some(i), Some(cluster)) => cluster
                .nodes
                .get(i)
                .map(|n| n.handle.clone())
                .ok_or_else(|| format!("there is no demo node {}", i + 1))?,
            (Some(_), None) => return Err("no demo cluster is running".into()),
        };
        *self.focus_index.lock().expect("not poisoned") = index;
        self.focus.send_replace(node);
        Ok(())
    }

    pub async fn demo_start(&self, nodes: usize) -> Result<DemoStatus, String> {
        {
            let mut demo = self.demo.lock().await;
            if demo.is_none() {
                let data_dir =
                    std::env::temp_dir().join(format!("lattice-app-demo-{}", std::process::id()));
                let options = DemoOptions {
                    nodes: nodes.clamp(2, 12),
                    fast: true,
                    data_dir,
                };
                *demo = Some(
                    DemoCluster::start(&options)
                        .await
                        .map_err(|e| e.to_string())?,
                );
            }
        }
        // Watch the first demo node: its timers are compressed for the audience.
        self.set_focus(Some(0)).await?;
        Ok(self.demo_status().await)
    }

    pub async fn demo_cut(&self, cut: bool) -> Result<DemoStatus, String> {
        {
            let demo = self.demo.lock().await;
            let cluster = demo.as_ref().ok_or("no demo cluster is running")?;
            let result = if cut {
                cluster.cut_p2p().await
            } else {
                cluster.restore_p2p().await
            };
            result.map_err(|e| e.to_string())?;
        }
        Ok(self.demo_status().await)
    }

    pub async fn demo_stop(&self) -> DemoStatus {
        let _ = self.set_focus(None).await;
        let cluster = self.demo.lock().await.take();
        if let Some(cluster) = cluster {
            cluster.shutdown().await;
            let _ = std::fs::remove_dir_all(
                std::env::temp_dir().join(format!("lattice-app-demo-{}", std::process::id())),
            );
        }
        self.demo_status().await
    }

    pub async fn demo_status(&self) -> DemoStatus {
        let demo = self.demo.lock().await;
        DemoStatus {
            running: demo.is_some(),
            focus: *self.focus_index.lock().expect("not poisoned"),
            nodes: demo
                .as_ref()
                .map(|c| {
                    c.nodes
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
        }
    }

    /// Stops the demo cluster and the app's node (in-flight commits finish).
    pub async fn shutdown(&self) {
        self.demo_stop().await;
        self.own.shutdown().await;
    }
}

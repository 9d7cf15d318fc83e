//! A cluster's room: each NodeManager's memory and vcores, shared by every
//! application's containers, the AM containers included. A real RM allocates
//! only where a node has room, so a full queue means asks stay outstanding
//! (the real-cluster report behind the session deadlock: 7 GB of 8 GB held by
//! an AM and two idle TaskManagers, so a third container never came).
//! Containers are normalised before they count: the scheduler rounds memory
//! and vcores up to the minimum allocation (`rest/` captures: 10 MB asked,
//! 128 MB given).

use std::collections::HashMap;
use std::sync::Mutex;

use hadoop::yarn::{ContainerId, NodeId, Resource};

#[derive(Debug)]
pub struct Capacity {
    nodes: Vec<(NodeId, Resource)>,
    state: Mutex<HashMap<ContainerId, (usize, Resource)>>,
}

impl Capacity {
    /// Every node gets `per_node` (memory MB, vcores).
    pub fn new(nodes: &[NodeId], per_node: (i64, i32)) -> Self {
        let total = Resource::new(per_node.0, per_node.1);
        Self { nodes: nodes.iter().map(|n| (n.clone(), total.clone())).collect(), state: Mutex::default() }
    }

    fn free_on(&self, used: &HashMap<ContainerId, (usize, Resource)>, node: usize) -> (i64, i32) {
        let total = &self.nodes[node].1;
        let (mut mem, mut vc) = (total.memory_mb, total.vcores);
        for (n, r) in used.values() {
            if *n == node {
                mem -= r.memory_mb;
                vc -= r.vcores;
            }
        }
        (mem, vc)
    }

    /// Takes room for container `id` on the first node, from `start` round
    /// robin, that has it; `None` when no node does.
    pub fn take(&self, id: ContainerId, r: &Resource, start: usize) -> Option<NodeId> {
        let mut used = self.state.lock().unwrap();
        let n = self.nodes.len();
        for i in 0..n {
            let node = (start + i) % n;
            let (mem, vc) = self.free_on(&used, node);
            if r.memory_mb <= mem && r.vcores <= vc {
                used.insert(id, (node, r.clone()));
                return Some(self.nodes[node].0.clone());
            }
        }
        None
    }

    /// Room on a given node (the AM container goes to the first node).
    pub fn take_on(&self, id: ContainerId, r: &Resource, node: &NodeId) -> bool {
        let Some(index) = self.nodes.iter().position(|(n, _)| n == node) else { return false };
        let mut used = self.state.lock().unwrap();
        let (mem, vc) = self.free_on(&used, index);
        let fits = r.memory_mb <= mem && r.vcores <= vc;
        if fits {
            used.insert(id, (index, r.clone()));
        }
        fits
    }

    /// The container is gone (released, completed, killed): idempotent.
    pub fn give_back(&self, id: &ContainerId) {
        self.state.lock().unwrap().remove(id);
    }

    /// Memory held, by container (for tests that check what a job held).
    pub fn held(&self) -> Vec<(ContainerId, Resource)> {
        let mut v: Vec<_> = self.state.lock().unwrap().iter().map(|(id, (_, r))| (*id, r.clone())).collect();
        v.sort_by_key(|(id, _)| *id);
        v
    }
}

//! Inode numbers for tree nodes. A node keeps its number for the life of the mount
//! (across idle release and re-freeze), so hard links (same guest id) share one and a
//! backup tool's inode-based link detection works.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Node {
    /// The folder of VMs (when SOURCE holds several).
    Root,
    Vm(u32),
    Vmx(u32),
    Status(u32),
    Disks(u32),
    Volumes(u32),
    Descriptor(u32, u32),
    Flat(u32, u32),
    /// (vm, volume index in `FrozenVm::volumes`, guest node id)
    Guest(u32, u32, u64),
    /// A named stream seen as `file:stream` (`-o streams=windows`).
    Stream(u32, u32, u64, Arc<str>),
}

impl Node {
    pub fn vm(&self) -> Option<u32> {
        match *self {
            Node::Root => None,
            Node::Vm(v)
            | Node::Vmx(v)
            | Node::Status(v)
            | Node::Disks(v)
            | Node::Volumes(v)
            | Node::Descriptor(v, _)
            | Node::Flat(v, _)
            | Node::Guest(v, _, _)
            | Node::Stream(v, _, _, _) => Some(v),
        }
    }
}

/// FxHash: the table is hashed once per entry of every listing, and its keys are not
/// attacker-chosen in a way that matters (the worst case is a slower lookup).
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl std::hash::Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

type FxBuild = std::hash::BuildHasherDefault<Fx>;

#[derive(Default)]
struct Table {
    nodes: Vec<Node>,
    numbers: HashMap<Node, u64, FxBuild>,
}

pub struct Inodes {
    table: RwLock<Table>,
}

impl Inodes {
    /// `root` gets inode 1, the number the kernel asks for first.
    pub fn new(root: Node) -> Self {
        let inodes = Inodes {
            table: RwLock::new(Table::default()),
        };
        inodes.ino(root);
        inodes
    }

    pub fn ino(&self, node: Node) -> u64 {
        if let Some(&n) = self.read().numbers.get(&node) {
            return n;
        }
        let mut t = self.table.write().unwrap_or_else(|p| p.into_inner());
        if let Some(&n) = t.numbers.get(&node) {
            return n;
        }
        t.nodes.push(node.clone());
        let n = t.nodes.len() as u64;
        t.numbers.insert(node, n);
        n
    }

    pub fn node(&self, ino: u64) -> Option<Node> {
        let idx = usize::try_from(ino.checked_sub(1)?).ok()?;
        self.read().nodes.get(idx).cloned()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|p| p.into_inner())
    }
}

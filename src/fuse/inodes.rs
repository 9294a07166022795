//! Inode numbers for tree nodes. A node keeps its number for the life of the mount
//! (across idle release and re-freeze), so hard links (same guest id) share one and a
//! backup tool's inode-based link detection works.
//!
//! Guest files, the nodes a backup visits by the million, get numbers computed from
//! (vm, volume, guest id) and decoded back, so they cost no memory however many are
//! visited and need no `forget` bookkeeping. Only the few other nodes (and guest ids too
//! large to pack) are kept in a table.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::sync::Relock;

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
    /// `disks/since/`: lookup-only, one folder per change id asked for.
    Since(u32),
    /// `disks/since/<id>/` (the id decoded from its path name).
    SinceId(u32, Arc<str>),
    /// `disk<N>.changes.json` there: (vm, id, place in `FrozenVm::disks`).
    SinceJson(u32, Arc<str>, u32),
    /// `disk<N>-flat.vmdk` there: the sparse view of the changes.
    SinceFlat(u32, Arc<str>, u32),
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
            | Node::Stream(v, _, _, _)
            | Node::Since(v)
            | Node::SinceId(v, _)
            | Node::SinceJson(v, _, _)
            | Node::SinceFlat(v, _, _) => Some(v),
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

/// Packed numbers have the top bit set; table numbers count up from 1 and never reach it.
const PACKED: u64 = 1 << 63;
/// NTFS record numbers and FAT/exFAT entry offsets (volumes up to 16 TiB) fit in 44 bits.
const ID_BITS: u32 = 44;
const VOL_BITS: u32 = 8;
const VM_BITS: u32 = 63 - ID_BITS - VOL_BITS;

fn pack(node: &Node) -> Option<u64> {
    match *node {
        Node::Guest(vm, vol, id)
            if u64::from(vm) < 1 << VM_BITS
                && u64::from(vol) < 1 << VOL_BITS
                && id < 1 << ID_BITS =>
        {
            Some(PACKED | u64::from(vm) << (ID_BITS + VOL_BITS) | u64::from(vol) << ID_BITS | id)
        }
        _ => None,
    }
}

fn unpack(ino: u64) -> Option<Node> {
    if ino & PACKED == 0 {
        return None;
    }
    let id = ino & ((1 << ID_BITS) - 1);
    let vol = (ino >> ID_BITS) & ((1 << VOL_BITS) - 1);
    let vm = (ino >> (ID_BITS + VOL_BITS)) & ((1 << VM_BITS) - 1);
    Some(Node::Guest(vm as u32, vol as u32, id))
}

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
        if let Some(n) = pack(&node) {
            return n;
        }
        if let Some(&n) = self.read().numbers.get(&node) {
            return n;
        }
        let mut t = self.table.write().relock();
        if let Some(&n) = t.numbers.get(&node) {
            return n;
        }
        t.nodes.push(node.clone());
        let n = t.nodes.len() as u64;
        t.numbers.insert(node, n);
        n
    }

    pub fn node(&self, ino: u64) -> Option<Node> {
        if ino & PACKED != 0 {
            return unpack(ino);
        }
        let idx = usize::try_from(ino.checked_sub(1)?).ok()?;
        self.read().nodes.get(idx).cloned()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.table.read().relock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_numbers_round_trip_without_growing_the_table() {
        let inodes = Inodes::new(Node::Root);
        assert_eq!(inodes.ino(Node::Root), 1);
        let cases = [
            Node::Guest(0, 0, 5),
            Node::Guest(3, 1, 0),
            Node::Guest((1 << VM_BITS) - 1, 255, (1 << ID_BITS) - 1),
        ];
        for node in &cases {
            let ino = inodes.ino(node.clone());
            assert_eq!(inodes.node(ino).as_ref(), Some(node));
            assert_eq!(inodes.ino(node.clone()), ino, "stable");
        }
        let distinct: std::collections::HashSet<u64> =
            cases.iter().map(|n| inodes.ino(n.clone())).collect();
        assert_eq!(distinct.len(), cases.len());
        assert_eq!(
            inodes.read().nodes.len(),
            1,
            "only the root is in the table"
        );

        // Ids too large to pack, and streams, fall back to the table.
        let big = Node::Guest(0, 0, 1 << ID_BITS);
        let ino = inodes.ino(big.clone());
        assert!(ino < PACKED);
        assert_eq!(inodes.node(ino), Some(big));
        let stream = Node::Stream(0, 0, 5, Arc::from("Zone.Identifier"));
        let ino = inodes.ino(stream.clone());
        assert_eq!(inodes.node(ino), Some(stream));
        assert_eq!(inodes.node(0), None);
        assert_eq!(inodes.node(999), None);
    }
}

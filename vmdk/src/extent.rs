//! One extent line of a descriptor, opened: where a range of the virtual disk comes from.

use std::ops::Range;
use std::sync::Arc;

use vmsnapfs_io::{Lent, Places, ReadAt};

use crate::error::Result;
use crate::grain_directory::read_exact;
use crate::sparse_extent::SparseExtent;
use crate::Class;

pub(crate) enum Extent {
    /// FLAT and VMFS: the bytes, at `offset` in the file.
    Flat {
        file: String,
        src: Arc<dyn ReadAt>,
        offset: u64,
    },
    /// ZERO: no file, all zeros.
    Zero,
    Sparse(Box<SparseExtent>),
}

impl Extent {
    pub(crate) fn read(
        &self,
        off: u64,
        buf: &mut [u8],
        base: usize,
        holes: &mut Vec<Range<usize>>,
    ) -> Result<()> {
        match self {
            Extent::Flat { file, src, offset } => read_exact(file, &**src, offset + off, buf),
            Extent::Zero => {
                buf.fill(0);
                Ok(())
            }
            Extent::Sparse(s) => s.read(off, buf, base, holes),
        }
    }

    /// The bytes of a flat extent, where its file lends them.
    pub(crate) fn lend(&self, off: u64, len: usize) -> Option<std::io::Result<Lent>> {
        match self {
            Extent::Flat { src, offset, .. } => src.lend(offset.checked_add(off)?, len),
            _ => None,
        }
    }

    /// Places `[off, off + len)` of this extent; `parent` places what this link does
    /// not hold.
    pub(crate) fn place(
        &self,
        off: u64,
        len: u64,
        out: &mut Places,
        parent: &mut dyn FnMut(u64, u64, &mut Places) -> bool,
    ) -> bool {
        match self {
            Extent::Flat { src, offset, .. } => offset
                .checked_add(off)
                .is_some_and(|at| src.place(at, len, out)),
            Extent::Zero => {
                out.zero(len);
                true
            }
            Extent::Sparse(s) => s.place(off, len, out, parent),
        }
    }

    pub(crate) fn map(&self, len: u64, emit: &mut dyn FnMut(Range<u64>, Class)) -> Result<()> {
        match self {
            Extent::Flat { .. } => {
                emit(0..len, Class::Data);
                Ok(())
            }
            Extent::Zero => {
                emit(0..len, Class::Zero);
                Ok(())
            }
            Extent::Sparse(s) => s.map(len, emit),
        }
    }
}

//! Grain-mapped extents (hosted sparse, streamOptimized, COWD, SEsparse): opening them from
//! their headers, and the read loop that turns a byte range into as few file reads as the
//! layout allows.

use std::ops::Range;
use std::sync::Arc;

use vmsnapfs_io::{Places, ReadAt};

use crate::compressed_grain;
use crate::cowd_header::{self, CowdHeader};
use crate::error::{Error, Result};
use crate::grain_directory::{read_exact, Grain, GrainDirectory, TableFormat};
use crate::marker;
use crate::sesparse_header::{self, SeSparseConstHeader, SeSparseVolatileHeader};
use crate::sparse_extent_header::{self as seh, SparseExtentHeader};
use crate::Class;
use vmsnapfs_io::ShardedLru;

/// Inflated grains kept per compressed extent, so small sequential reads inflate each grain
/// once.
const INFLATED_CACHE_BYTES: u64 = 32 * 1024 * 1024;
/// Largest virtual size accepted (sectors): 256 TiB, beyond every VMDK flavour's limit.
pub(crate) const MAX_CAPACITY_SECTORS: u64 = 1 << 39;

pub(crate) struct SparseExtent {
    file: String,
    src: Arc<dyn ReadAt>,
    gd: GrainDirectory,
    grain_bytes: u64,
    markers: bool,
    inflated: Option<ShardedLru<u64, Arc<Vec<u8>>>>,
}

/// Reads the KDMV header, and for streamOptimized files whose header defers the grain
/// directory to the end, the footer that replaces it. Returns (first header, effective header).
pub(crate) fn read_kdmv_header(
    file: &str,
    src: &dyn ReadAt,
) -> Result<(SparseExtentHeader, SparseExtentHeader)> {
    let mut b = [0u8; seh::SIZE];
    read_exact(file, src, 0, &mut b)?;
    let first = SparseExtentHeader::parse(&b).map_err(|r| Error::corrupt(file, 0, r))?;
    if first.gd_offset != seh::GD_AT_END {
        return Ok((first.clone(), first));
    }
    let end = src.size() / 512 * 512;
    let Some(at) = end.checked_sub(3 * marker::MARKER_LEN as u64) else {
        return Err(Error::corrupt(
            file,
            0,
            "grain directory is at the end, but the file is too short for a footer",
        ));
    };
    let mut tail = [0u8; 3 * marker::MARKER_LEN];
    read_exact(file, src, at, &mut tail)?;
    let footer = marker::check_footer(&tail).map_err(|r| Error::corrupt(file, at, r))?;
    let h = SparseExtentHeader::parse(&footer)
        .map_err(|r| Error::corrupt(file, at + 512, format!("footer: {r}")))?;
    if h.gd_offset == seh::GD_AT_END {
        return Err(Error::corrupt(
            file,
            at + 512,
            "footer does not say where the grain directory is",
        ));
    }
    Ok((first, h))
}

impl SparseExtent {
    pub(crate) fn open_hosted(
        file: &str,
        src: Arc<dyn ReadAt>,
        h: &SparseExtentHeader,
    ) -> Result<Self> {
        h.validate().map_err(|r| Error::corrupt(file, 0, r))?;
        if h.capacity > MAX_CAPACITY_SECTORS {
            return Err(Error::corrupt(
                file,
                0,
                format!("capacity of {} sectors is implausible", h.capacity),
            ));
        }
        let span = h.grain_size * h.num_gtes_per_gt as u64;
        let entries = h.capacity.div_ceil(span);
        let format = TableFormat::Sector32 {
            zero_grain: h.zeroed_grain_gte(),
            compressed: h.compressed(),
        };
        let load = |gd_sector: u64| {
            let Some(at) = gd_sector.checked_mul(512) else {
                return Err(Error::corrupt(file, 0, "grain directory offset overflows"));
            };
            GrainDirectory::load(
                file,
                src.clone(),
                at,
                entries,
                4,
                h.num_gtes_per_gt as u64,
                h.grain_size,
                format,
            )
        };
        // The redundant copy exists for exactly this: a primary that cannot be read.
        let gd = match load(h.gd_offset) {
            Ok(gd) => gd,
            Err(e) if h.has_redundant_gd() => load(h.rgd_offset).map_err(|_| e)?,
            Err(e) => return Err(e),
        };
        Ok(Self::new(
            file,
            src,
            gd,
            h.grain_size,
            h.compressed(),
            h.has_markers(),
        ))
    }

    /// Returns the extent and its capacity in sectors.
    pub(crate) fn open_cowd(file: &str, src: Arc<dyn ReadAt>) -> Result<(Self, u64)> {
        let mut b = [0u8; cowd_header::SIZE];
        read_exact(file, &*src, 0, &mut b)?;
        let h = CowdHeader::parse(&b).map_err(|r| Error::corrupt(file, 0, r))?;
        let capacity = h.capacity as u64;
        // qemu trusts numGDEntries; a header that covers less than its capacity fails on
        // lookup rather than here, like qemu.
        let gd = GrainDirectory::load(
            file,
            src.clone(),
            h.gd_offset as u64 * 512,
            h.num_gd_entries as u64,
            4,
            cowd_header::GTES_PER_GT as u64,
            h.grain_size as u64,
            TableFormat::Sector32 {
                zero_grain: false,
                compressed: false,
            },
        )?;
        Ok((
            Self::new(file, src, gd, h.grain_size as u64, false, false),
            capacity,
        ))
    }

    /// Returns the extent and its capacity in sectors.
    pub(crate) fn open_sesparse(file: &str, src: Arc<dyn ReadAt>) -> Result<(Self, u64)> {
        let mut b = [0u8; sesparse_header::SIZE];
        read_exact(file, &*src, 0, &mut b)?;
        let h = SeSparseConstHeader::parse(&b).map_err(|r| Error::corrupt(file, 0, r))?;
        if h.capacity > MAX_CAPACITY_SECTORS {
            return Err(Error::corrupt(
                file,
                0,
                format!("capacity of {} sectors is implausible", h.capacity),
            ));
        }
        let Some(vat) = h.volatile_header_offset.checked_mul(512) else {
            return Err(Error::corrupt(file, 0, "volatile header offset overflows"));
        };
        let mut vb = [0u8; sesparse_header::SIZE];
        read_exact(file, &*src, vat, &mut vb)?;
        let v = SeSparseVolatileHeader::parse(&vb).map_err(|r| Error::corrupt(file, vat, r))?;
        if v.replay_journal != 0 {
            return Err(Error::JournalReplay {
                file: file.to_string(),
            });
        }
        let Some(gd_at) = h.grain_dir_offset.checked_mul(512) else {
            return Err(Error::corrupt(file, 0, "grain directory offset overflows"));
        };
        let entries = h.grain_dir_size.saturating_mul(512 / 8);
        let gd = GrainDirectory::load(
            file,
            src.clone(),
            gd_at,
            entries,
            8,
            sesparse_header::GTES_PER_GT,
            h.grain_size,
            TableFormat::SeSparse {
                tables_offset: h.grain_tables_offset,
                grains_offset: h.grains_offset,
            },
        )?;
        Ok((
            Self::new(file, src, gd, h.grain_size, false, false),
            h.capacity,
        ))
    }

    fn new(
        file: &str,
        src: Arc<dyn ReadAt>,
        gd: GrainDirectory,
        grain_sectors: u64,
        compressed: bool,
        markers: bool,
    ) -> Self {
        let grain_bytes = grain_sectors * 512;
        let inflated = compressed
            .then(|| ShardedLru::new((INFLATED_CACHE_BYTES / grain_bytes).max(4) as usize));
        Self {
            file: file.to_string(),
            src,
            gd,
            grain_bytes,
            markers,
            inflated,
        }
    }

    fn span_bytes(&self) -> u64 {
        self.grain_bytes * self.gd.gtes_per_gt()
    }

    /// Grain `gi`, through `table`: the last grain table looked up (its directory
    /// index and the table, None when absent), kept so a run of grains reads it once.
    fn grain(&self, gi: u64, table: &mut Option<(u64, Option<Arc<[u64]>>)>) -> Result<Grain> {
        let per = self.gd.gtes_per_gt();
        let gd_index = gi / per;
        if table.as_ref().map(|t| t.0) != Some(gd_index) {
            *table = Some((gd_index, self.gd.table(gd_index)?));
        }
        match table.as_ref().and_then(|t| t.1.as_ref()) {
            None => Ok(Grain::Unallocated),
            Some(t) => self.gd.decode(t[(gi % per) as usize]),
        }
    }

    /// Fills `buf` from extent offset `off`; ranges this link does not hold are appended to
    /// `holes` (shifted by `base`) for the parent to fill.
    pub(crate) fn read(
        &self,
        off: u64,
        buf: &mut [u8],
        base: usize,
        holes: &mut Vec<Range<usize>>,
    ) -> Result<()> {
        let mut table = None;
        // A pending run of physically contiguous data grains: (file offset, buf range).
        let mut run: Option<(u64, Range<usize>)> = None;
        let mut pos = 0usize;
        while pos < buf.len() {
            let v = off + pos as u64;
            let gi = v / self.grain_bytes;
            let in_grain = v % self.grain_bytes;
            let n = ((self.grain_bytes - in_grain) as usize).min(buf.len() - pos);
            let grain = self.grain(gi, &mut table)?;
            if let Grain::Data(at) = grain {
                let at = at + in_grain;
                match &mut run {
                    Some((start, r)) if *start + (r.end - r.start) as u64 == at && r.end == pos => {
                        r.end += n
                    }
                    _ => {
                        self.flush(&mut run, buf)?;
                        run = Some((at, pos..pos + n));
                    }
                }
            } else {
                self.flush(&mut run, buf)?;
                let piece = &mut buf[pos..pos + n];
                match grain {
                    Grain::Zero => piece.fill(0),
                    Grain::Unallocated => push_hole(holes, base + pos..base + pos + n),
                    Grain::Compressed(at) => {
                        self.read_compressed(gi, at, in_grain as usize, piece)?
                    }
                    Grain::Data(_) => {}
                }
            }
            pos += n;
        }
        self.flush(&mut run, buf)
    }

    /// Places `[off, off + len)` of this extent in order: data grains where the file
    /// holds them, zero grains as zeros, and unallocated ones through `parent` (the
    /// link below, which may itself say no). A compressed grain cannot be placed.
    pub(crate) fn place(
        &self,
        off: u64,
        len: u64,
        out: &mut Places,
        parent: &mut dyn FnMut(u64, u64, &mut Places) -> bool,
    ) -> bool {
        let mut table = None;
        let mut pos = 0u64;
        while pos < len {
            let v = off + pos;
            let gi = v / self.grain_bytes;
            let in_grain = v % self.grain_bytes;
            let n = (self.grain_bytes - in_grain).min(len - pos);
            let Ok(grain) = self.grain(gi, &mut table) else {
                return false;
            };
            let placed = match grain {
                Grain::Data(at) => at
                    .checked_add(in_grain)
                    .is_some_and(|at| self.src.place(at, n, out)),
                Grain::Zero => {
                    out.zero(n);
                    true
                }
                Grain::Unallocated => parent(v, n, out),
                Grain::Compressed(_) => false,
            };
            if !placed {
                return false;
            }
            pos += n;
        }
        true
    }

    fn flush(&self, run: &mut Option<(u64, Range<usize>)>, buf: &mut [u8]) -> Result<()> {
        if let Some((at, r)) = run.take() {
            read_exact(&self.file, &*self.src, at, &mut buf[r])?;
        }
        Ok(())
    }

    fn read_compressed(&self, gi: u64, at: u64, in_grain: usize, out: &mut [u8]) -> Result<()> {
        let cache = self.inflated.as_ref();
        if in_grain == 0 && out.len() as u64 == self.grain_bytes {
            // A reader taking whole grains will not come back for them: skip the cache.
            let n = compressed_grain::inflate(&self.file, &*self.src, at, self.markers, out)?;
            if n < out.len() {
                return Err(Error::corrupt(
                    &self.file,
                    at,
                    format!("grain inflates to {n} bytes, less than a grain"),
                ));
            }
            return Ok(());
        }
        let g = match cache.and_then(|c| c.get(&gi)) {
            Some(g) => g,
            None => {
                let mut v = vec![0u8; self.grain_bytes as usize];
                let n =
                    compressed_grain::inflate(&self.file, &*self.src, at, self.markers, &mut v)?;
                v.truncate(n);
                let g = Arc::new(v);
                if let Some(c) = cache {
                    c.put(gi, g.clone());
                }
                g
            }
        };
        match g.get(in_grain..in_grain + out.len()) {
            Some(s) => {
                out.copy_from_slice(s);
                Ok(())
            }
            None => Err(Error::corrupt(
                &self.file,
                at,
                format!("grain inflates to {} bytes, fewer than needed", g.len()),
            )),
        }
    }

    /// Classifies `[0, len)` of this extent; `emit` gets ranges in order.
    pub(crate) fn map(&self, len: u64, emit: &mut dyn FnMut(Range<u64>, Class)) -> Result<()> {
        let span = self.span_bytes();
        let mut gd_index = 0;
        while gd_index * span < len {
            let start = gd_index * span;
            let end = (start + span).min(len);
            match self.gd.table(gd_index)? {
                None => emit(start..end, Class::Unallocated),
                Some(t) => {
                    let mut v = start;
                    for &e in t.iter() {
                        if v >= end {
                            break;
                        }
                        let ge = (v + self.grain_bytes).min(end);
                        let class = match self.gd.decode(e)? {
                            Grain::Unallocated => Class::Unallocated,
                            Grain::Zero => Class::Zero,
                            Grain::Data(_) | Grain::Compressed(_) => Class::Data,
                        };
                        emit(v..ge, class);
                        v = ge;
                    }
                }
            }
            gd_index += 1;
            if gd_index >= self.gd.entries() && gd_index * span < len {
                return Err(Error::corrupt(
                    &self.file,
                    0,
                    "extent is larger than its grain directory covers",
                ));
            }
        }
        Ok(())
    }
}

fn push_hole(holes: &mut Vec<Range<usize>>, r: Range<usize>) {
    if let Some(last) = holes.last_mut() {
        if last.end == r.start {
            last.end = r.end;
            return;
        }
    }
    holes.push(r);
}

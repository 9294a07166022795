//! Directory indexes: in-order walks, B+ tree lookups, and the $Secure $SII view index.

use super::*;

impl Volume {
    pub(super) fn index_parts<'a>(
        &self,
        f: &'a FileInfo,
        name: &[u16],
        kind: IndexKind,
    ) -> Result<(index_root::IndexRoot, IndexCtx<'a>)> {
        let n = f.record;
        let root_attr = f
            .find(INDEX_ROOT, name)
            .ok_or(Error::NotADirectory { record: n })?;
        let Value::Resident(v) = &root_attr.value else {
            return Err(Error::corrupt(n, "non-resident $INDEX_ROOT"));
        };
        let root = index_root::parse(v, kind == IndexKind::SecurityId)
            .map_err(|m| Error::corrupt(n, format!("$INDEX_ROOT: {m}")))?;
        let alloc = match f.find(INDEX_ALLOCATION, name).map(|a| &a.value) {
            Some(Value::NonResident(nr)) => Some(nr),
            _ => None,
        };
        let ctx = IndexCtx {
            record: n,
            alloc,
            block_size: root.block_size,
            kind,
        };
        Ok((root, ctx))
    }

    pub(super) fn index_block(&self, ctx: &IndexCtx<'_>, vcn: u64) -> Result<Arc<Vec<IndexEntry>>> {
        let n = ctx.record;
        self.index_blocks.get_or_try_insert((n, ctx.kind, vcn), || {
            self.counters.index_blocks_read.fetch_add(1, Relaxed);
            let alloc = ctx.alloc.ok_or_else(|| {
                Error::corrupt(
                    n,
                    "index entry points below the root but there is no $INDEX_ALLOCATION",
                )
            })?;
            let cs = self.boot.cluster_size;
            // Blocks smaller than a cluster are addressed in 512-byte units.
            let unit = if ctx.block_size >= cs { cs } else { 512 } as u64;
            let bs = ctx.block_size as u64;
            let off = vcn
                .checked_mul(unit)
                .filter(|o| o.checked_add(bs).is_some_and(|e| e <= alloc.data_size))
                .ok_or_else(|| {
                    Error::corrupt(
                        n,
                        format!("index block VCN {vcn} outside $INDEX_ALLOCATION"),
                    )
                })?;
            let mut buf = vec![0u8; bs as usize];
            self.read_runs(&alloc.runs, off, &mut buf, n)?;
            index_record::parse(buf, vcn, ctx.kind == IndexKind::SecurityId)
                .map(Arc::new)
                .map_err(|m| Error::corrupt(n, format!("index block: {m}")))
        })
    }

    /// In-order traversal of a whole index, each block visited at most once.
    pub(super) fn walk_index(
        &self,
        f: &FileInfo,
        name: &[u16],
        kind: IndexKind,
        visit: &mut dyn FnMut(&IndexEntry) -> Result<()>,
    ) -> Result<()> {
        let (root, ctx) = self.index_parts(f, name, kind)?;
        let mut visited = HashSet::new();
        self.walk_node(&ctx, &root.entries, 0, &mut visited, visit)
    }

    pub(super) fn walk_node(
        &self,
        ctx: &IndexCtx<'_>,
        entries: &[IndexEntry],
        depth: usize,
        visited: &mut HashSet<u64>,
        visit: &mut dyn FnMut(&IndexEntry) -> Result<()>,
    ) -> Result<()> {
        if depth > MAX_INDEX_DEPTH {
            return Err(Error::corrupt(ctx.record, "index tree too deep"));
        }
        for e in entries {
            if let Some(vcn) = e.child_vcn {
                if !visited.insert(vcn) {
                    return Err(Error::corrupt(
                        ctx.record,
                        format!("index block VCN {vcn} is referenced twice (cycle)"),
                    ));
                }
                let block = self.index_block(ctx, vcn)?;
                self.walk_node(ctx, &block, depth + 1, visited, visit)?;
            }
            if !e.is_last() {
                visit(e)?;
            }
        }
        Ok(())
    }

    /// Directory listing in collation order, without "." and DOS 8.3 aliases.
    pub fn read_dir(&self, dir: FileId) -> Result<Vec<DirEntry>> {
        let f = self.file(dir.0)?;
        let mut out = Vec::new();
        let mut system = Vec::new();
        self.walk_index(&f, I30, IndexKind::FileName, &mut |e| {
            let fnm = file_name::parse(&e.key)
                .map_err(|m| Error::corrupt(dir.0, format!("index key: {m}")))?;
            if fnm.namespace == NAMESPACE_DOS {
                return Ok(());
            }
            let id = ref_record(e.header);
            if id == dir.0 && fnm.name == [0x2E] {
                return Ok(());
            }
            let kind_hint = kind_hint(&fnm);
            if kind_hint == FileKind::File && fnm.attributes & attr::SYSTEM != 0 {
                system.push(out.len());
            }
            out.push(DirEntry {
                name: name::from_utf16(&fnm.name),
                id: FileId(id),
                kind_hint,
            });
            Ok(())
        })?;
        // A system file may be an Interix link or device, which only its data tells (as
        // ntfs-3g's readdir does); a file that cannot be stat'ed keeps its hint.
        for i in system {
            if let Ok(m) = self.stat(out[i].id) {
                out[i].kind_hint = m.kind;
            }
        }
        Ok(out)
    }

    /// Looks `name` up by descending the B+ tree with the volume's $UpCase collation.
    /// Exact (case-sensitive) match; DOS 8.3 aliases are not matched, like `read_dir`.
    pub fn lookup(&self, dir: FileId, name_str: &str) -> Result<Option<FileId>> {
        let target = name::to_utf16(name_str);
        self.descend(dir, &target, &|a, b| self.upcase.collate(a, b))
    }

    /// Like [`Volume::lookup`] but matching the way Windows does, ignoring case through
    /// the volume's `$UpCase` table; still a tree descent, O(log n). When POSIX-namespace
    /// names differ only in case, one of them is returned.
    pub fn lookup_ignore_case(&self, dir: FileId, name_str: &str) -> Result<Option<FileId>> {
        let target = name::to_utf16(name_str);
        self.descend(dir, &target, &|a, b| self.upcase.cmp_ignore_case(a, b))
    }

    fn descend(
        &self,
        dir: FileId,
        target: &[u16],
        cmp: &dyn Fn(&[u16], &[u16]) -> std::cmp::Ordering,
    ) -> Result<Option<FileId>> {
        let f = self.file(dir.0)?;
        let (root, ctx) = self.index_parts(&f, I30, IndexKind::FileName)?;
        let mut visited = HashSet::new();
        let mut block: Option<Arc<Vec<IndexEntry>>> = None;
        loop {
            let entries: &[IndexEntry] = match &block {
                Some(b) => b,
                None => &root.entries,
            };
            let mut next = None;
            for e in entries {
                if e.is_last() {
                    next = e.child_vcn;
                    break;
                }
                let fnm = file_name::parse(&e.key)
                    .map_err(|m| Error::corrupt(dir.0, format!("index key: {m}")))?;
                match cmp(target, &fnm.name) {
                    std::cmp::Ordering::Greater => continue,
                    std::cmp::Ordering::Equal if fnm.namespace != NAMESPACE_DOS => {
                        let id = ref_record(e.header);
                        // The root indexes itself as "."; like read_dir, do not expose it.
                        return Ok((id != dir.0).then_some(FileId(id)));
                    }
                    std::cmp::Ordering::Equal => return Ok(None),
                    std::cmp::Ordering::Less => {
                        next = e.child_vcn;
                        break;
                    }
                }
            }
            let Some(vcn) = next else {
                return Ok(None);
            };
            if !visited.insert(vcn) || visited.len() > MAX_INDEX_DEPTH {
                return Err(Error::corrupt(dir.0, "index descent loops"));
            }
            block = Some(self.index_block(&ctx, vcn)?);
        }
    }

    /// Resolves a `/`-separated path from the root.
    pub fn lookup_path(&self, path: &str) -> Result<Option<FileId>> {
        let mut cur = FileId::ROOT;
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            match self.lookup(cur, comp)? {
                Some(id) => cur = id,
                None => return Ok(None),
            }
        }
        Ok(Some(cur))
    }
}

fn kind_hint(f: &file_name::FileName) -> FileKind {
    let reparse = f.attributes & attr::REPARSE_POINT != 0;
    if reparse && reparse_point::is_link_tag(f.reparse_tag) {
        FileKind::Symlink
    } else if reparse && f.reparse_tag == reparse_point::TAG_LX_FIFO {
        FileKind::Fifo
    } else if reparse && f.reparse_tag == reparse_point::TAG_LX_CHR {
        FileKind::CharDevice
    } else if reparse && f.reparse_tag == reparse_point::TAG_LX_BLK {
        FileKind::BlockDevice
    } else if f.attributes & ATTR_DIRECTORY_INDEX != 0 {
        FileKind::Directory
    } else {
        FileKind::File
    }
}

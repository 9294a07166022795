//! stat, links and security descriptors.

use super::*;
use crate::security;

impl Volume {
    pub fn stat(&self, id: FileId) -> Result<Metadata> {
        let n = id.0;
        let f = self.file(n)?;
        let si = f.standard_information().map_err(|m| Error::corrupt(n, m))?;
        let link_count = f
            .file_names()
            .iter()
            .filter(|fnm| fnm.namespace != NAMESPACE_DOS)
            .count() as u32;
        // Reparse data too short for a tag stats as no reparse point: listing a directory
        // must not fail on one damaged entry; reading the link or the data says why.
        let reparse_tag = match self.reparse_data(&f)? {
            Some(rp) => reparse_point::tag(&rp).ok(),
            None => None,
        };
        let is_dir = f.flags & FLAG_DIRECTORY != 0;
        let kind = match reparse_tag {
            Some(t) if reparse_point::is_link_tag(t) => FileKind::Symlink,
            _ if is_dir => FileKind::Directory,
            None | Some(reparse_point::TAG_WOF) => FileKind::File,
            Some(_) => FileKind::OtherReparse,
        };
        let cs = self.boot.cluster_size as u64;
        let allocated = |a: Option<&Attribute>| match a.map(|a| &a.value) {
            Some(Value::NonResident(nr)) => nr
                .runs
                .iter()
                .filter(|r| r.lcn.is_some())
                .map(|r| r.len.saturating_mul(cs))
                .fold(0u64, u64::saturating_add),
            _ => 0,
        };
        let mut size = match f.data().map(|a| &a.value) {
            Some(Value::Resident(v)) => v.len() as u64,
            Some(Value::NonResident(nr)) => nr.data_size,
            None => 0,
        };
        // A WOF file occupies its compressed stream; the unnamed stream is a hole.
        let allocated_size = if reparse_tag == Some(reparse_point::TAG_WOF) {
            allocated(f.find(DATA, &name::to_utf16(wof::STREAM_NAME)))
        } else {
            allocated(f.data())
        };
        if is_dir {
            size = 0;
        }
        Ok(Metadata {
            id,
            sequence: f.sequence,
            kind,
            size,
            allocated_size,
            created: NtfsTime(si.created),
            modified: NtfsTime(si.modified),
            mft_modified: NtfsTime(si.mft_modified),
            accessed: NtfsTime(si.accessed),
            // Windows (and ntfs-3g) report the directory bit, kept in the record flags.
            attributes: si.attributes | if is_dir { attr::DIRECTORY } else { 0 },
            link_count,
            reparse_tag,
            security_id: si.security_id.filter(|&s| s != 0),
        })
    }

    /// Every hard link of a file as (parent directory, name), DOS 8.3 aliases left out.
    /// Useful for `..` and for turning volume-rooted link targets into relative ones.
    pub fn links(&self, id: FileId) -> Result<Vec<(FileId, String)>> {
        let f = self.file(id.0)?;
        Ok(f.file_names()
            .into_iter()
            .filter(|n| n.namespace != NAMESPACE_DOS)
            .map(|n| (FileId(ref_record(n.parent)), name::from_utf16(&n.name)))
            .collect())
    }

    pub fn read_link(&self, id: FileId) -> Result<ReparseTarget> {
        let f = self.file(id.0)?;
        let rp = self.reparse_data(&f)?.ok_or(Error::NotALink {
            record: id.0,
            tag: 0,
        })?;
        let tag = reparse_point::tag(&rp)
            .map_err(|e| Error::corrupt(id.0, format!("reparse data truncated: {e}")))?;
        if !reparse_point::is_link_tag(tag) {
            return Err(Error::NotALink { record: id.0, tag });
        }
        reparse_point::parse_link(&rp).map_err(|m| Error::corrupt(id.0, m))
    }

    /// The raw self-relative SECURITY_DESCRIPTOR of a file: from $Secure:$SDS through its
    /// security id (NTFS 3.x), else from a legacy $SECURITY_DESCRIPTOR attribute.
    pub fn security_descriptor(&self, id: FileId) -> Result<Option<Vec<u8>>> {
        let f = self.file(id.0)?;
        let si = f
            .standard_information()
            .map_err(|m| Error::corrupt(id.0, m))?;
        if let Some(a) = f.find(ah::SECURITY_DESCRIPTOR, &[]) {
            return Ok(Some(self.attr_value(id.0, a, MAX_SECURITY_DESCRIPTOR)?));
        }
        let Some(sid) = si.security_id.filter(|&s| s != 0) else {
            return Ok(None);
        };
        let map = self
            .security
            .get_or_init(|| self.load_security_index().map_err(|e| e.to_string()));
        let map = map
            .as_ref()
            .map_err(|m| Error::corrupt(SECURE_RECORD, m.clone()))?;
        let Some(&(off, len)) = map.get(&sid) else {
            return Ok(None);
        };
        if len < security::SDS_HEADER_LEN || len as u64 > MAX_SECURITY_DESCRIPTOR {
            return Err(Error::corrupt(
                SECURE_RECORD,
                format!("$SDS entry length {len}"),
            ));
        }
        let hdr = security::SDS_HEADER_LEN;
        let mut buf = vec![0u8; (len - hdr) as usize];
        let at = off
            .checked_add(hdr as u64)
            .ok_or_else(|| Error::corrupt(SECURE_RECORD, format!("$SDS offset {off}")))?;
        let got = fill(&mut buf, |done, b| {
            self.read(FileId(SECURE_RECORD), Some("$SDS"), at + done as u64, b)
        })?;
        if got != buf.len() {
            return Err(Error::corrupt(
                SECURE_RECORD,
                "$SDS entry past end of stream",
            ));
        }
        Ok(Some(buf))
    }

    pub(super) fn load_security_index(&self) -> Result<SecurityMap> {
        let f = self.file(SECURE_RECORD)?;
        let sii: Vec<u16> = "$SII".encode_utf16().collect();
        let mut map = HashMap::new();
        self.walk_index(&f, &sii, IndexKind::SecurityId, &mut |e| {
            // An entry too short to locate a descriptor is skipped: its files then have no
            // descriptor, which the FUSE layer already handles, rather than none having one.
            if let Ok(loc) = security::parse_sii_data(&e.data) {
                map.insert(loc.security_id, (loc.offset, loc.length));
            }
            Ok(())
        })?;
        Ok(map)
    }
}

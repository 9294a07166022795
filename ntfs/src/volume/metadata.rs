//! stat, links and security descriptors.

use super::*;
use crate::ea::{self, Ea, LxMetadata};
use crate::interix::{self, Special};
use crate::security;

/// $EA is at most 64 KiB on Windows; a little slack for other writers.
const MAX_EA: u64 = 128 * 1024;

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
        let mut device = None;
        let mut kind = match reparse_tag {
            Some(t) if reparse_point::is_link_tag(t) => FileKind::Symlink,
            _ if is_dir => FileKind::Directory,
            Some(reparse_point::TAG_LX_FIFO) => FileKind::Fifo,
            Some(t @ (reparse_point::TAG_LX_CHR | reparse_point::TAG_LX_BLK)) => {
                // Without a readable $LXDEV the device is still one, numbered 0:0.
                let lx = self.lx_of(&f).unwrap_or_default();
                let (major, minor) = lx.device.unwrap_or((0, 0));
                device = Some((major as u64, minor as u64));
                if t == reparse_point::TAG_LX_CHR {
                    FileKind::CharDevice
                } else {
                    FileKind::BlockDevice
                }
            }
            None | Some(reparse_point::TAG_WOF) => FileKind::File,
            Some(_) => FileKind::OtherReparse,
        };
        if kind == FileKind::File && reparse_tag.is_none() {
            match self.interix(&f, si.attributes) {
                Some(Special::Symlink(_)) => kind = FileKind::Symlink,
                Some(Special::Fifo) => kind = FileKind::Fifo,
                Some(Special::CharDevice { major, minor }) => {
                    kind = FileKind::CharDevice;
                    device = Some((major, minor));
                }
                Some(Special::BlockDevice { major, minor }) => {
                    kind = FileKind::BlockDevice;
                    device = Some((major, minor));
                }
                None => {}
            }
        }
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
        if is_dir
            || matches!(
                kind,
                FileKind::Fifo | FileKind::CharDevice | FileKind::BlockDevice
            )
        {
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
            device,
        })
    }

    /// What an Interix special file is, or `None` for anything else: only files with
    /// the system attribute, no reparse point and a plausible size have their data read,
    /// and data that cannot be read (encrypted, damaged) leaves a regular file whose
    /// `read` says why.
    fn interix(&self, f: &FileInfo, attributes: u32) -> Option<Special> {
        if attributes & attr::SYSTEM == 0 || f.flags & FLAG_DIRECTORY != 0 || f.has_reparse_point()
        {
            return None;
        }
        let a = f.data()?;
        let size = match &a.value {
            Value::Resident(v) => v.len() as u64,
            Value::NonResident(nr) => nr.data_size,
        };
        if !interix::may_be_special(size) {
            return None;
        }
        let data = self.attr_value(f.record, a, interix::MAX_LEN).ok()?;
        if data.len() as u64 != size {
            return None;
        }
        interix::parse(&data, attributes & attr::HIDDEN != 0)
    }

    /// The raw $EA value, as ntfs-3g's `system.ntfs_ea` xattr shows it.
    pub fn ea_data(&self, id: FileId) -> Result<Option<Vec<u8>>> {
        let f = self.file(id.0)?;
        self.ea_value(&f)
    }

    fn ea_value(&self, f: &FileInfo) -> Result<Option<Vec<u8>>> {
        match f.find(ah::EA, &[]) {
            Some(a) => Ok(Some(self.attr_value(f.record, a, MAX_EA)?)),
            None => Ok(None),
        }
    }

    /// The file's extended attributes ($EA), empty when it has none.
    pub fn extended_attributes(&self, id: FileId) -> Result<Vec<Ea>> {
        let f = self.file(id.0)?;
        self.eas_of(&f)
    }

    fn eas_of(&self, f: &FileInfo) -> Result<Vec<Ea>> {
        match self.ea_value(f)? {
            Some(v) => ea::parse(&v).map_err(|m| Error::corrupt(f.record, m)),
            None => Ok(Vec::new()),
        }
    }

    /// WSL's POSIX owner, group, mode and device numbers ($LXUID, $LXGID, $LXMOD,
    /// $LXDEV), each `None` when absent.
    pub fn lx_metadata(&self, id: FileId) -> Result<LxMetadata> {
        let f = self.file(id.0)?;
        self.lx_of(&f)
    }

    fn lx_of(&self, f: &FileInfo) -> Result<LxMetadata> {
        if f.find(ah::EA, &[]).is_none() {
            return Ok(LxMetadata::default());
        }
        Ok(LxMetadata::from_eas(&self.eas_of(f)?))
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
        let Some(rp) = self.reparse_data(&f)? else {
            let si = f
                .standard_information()
                .map_err(|m| Error::corrupt(id.0, m))?;
            return match self.interix(&f, si.attributes) {
                Some(Special::Symlink(target)) => Ok(ReparseTarget {
                    kind: reparse_point::LinkKind::Interix,
                    // Absolute targets are taken as volume-rooted, like Windows ones.
                    relative: !target.starts_with('/'),
                    foreign: false,
                    substitute_name: target.clone(),
                    print_name: target.clone(),
                    target,
                }),
                _ => Err(Error::NotALink {
                    record: id.0,
                    tag: 0,
                }),
            };
        };
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

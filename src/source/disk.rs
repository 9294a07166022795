//! A VMDK chain as a frozen disk (`DiskImage`), whatever resolver its files came
//! through, and what the chain itself says of changes: every link above the one with a
//! given CID holds what was written since that link stopped being the top.

use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use vmsnapfs_io::{Lent, Places, ReadAt};
use vmsnapfs_vmdk::Disk;

use super::api::{Cbt, CbtState, ChangeError, ChangeTracker, DiskImage};

pub(crate) struct VmdkImage(pub(crate) Disk);

impl ReadAt for VmdkImage {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_at(offset, buf)
    }
    fn size(&self) -> u64 {
        self.0.capacity()
    }
    fn lend(&self, offset: u64, len: usize) -> Option<io::Result<Lent>> {
        self.0.lend(offset, len)
    }
    fn place(&self, offset: u64, len: u64, out: &mut Places) -> bool {
        self.0.place(offset, len, out)
    }
}

impl DiskImage for VmdkImage {
    fn data_ranges(&self) -> io::Result<Vec<Range<u64>>> {
        self.0.allocated_ranges().map_err(io::Error::from)
    }
    fn adapter_type(&self) -> Option<String> {
        self.0
            .descriptor()
            .and_then(|d| d.get("ddb.adapterType"))
            .map(|s| s.trim_matches('"').to_owned())
    }
}

/// A chain's CIDs as change ids: `since/<CID>/` of a later freeze lists what the links
/// above that CID's link hold.
pub(crate) struct ChainChanges(pub(crate) Arc<VmdkImage>);

impl ChainChanges {
    /// The head's CID, as 8 hex digits (VMware's own spelling in descriptors).
    pub(crate) fn change_id(&self) -> Option<String> {
        self.0
             .0
            .cids()
            .first()
            .copied()
            .flatten()
            .map(|c| format!("{c:08x}"))
    }

    pub(crate) fn cbt(&self) -> Cbt {
        let cids = self.0 .0.cids();
        if cids.first().copied().flatten().is_none() {
            return Cbt::new(CbtState::Disabled, "the chain head has no CID");
        }
        let named: Vec<String> = cids
            .iter()
            .map(|c| c.map(|c| format!("{c:08x}")).unwrap_or_else(|| "-".into()))
            .collect();
        Cbt::new(
            CbtState::Enabled,
            format!(
                "snapshot chain: changes since any link's CID (head first: {})",
                named.join(" <- ")
            ),
        )
    }
}

impl ChangeTracker for ChainChanges {
    fn changed_since(&self, id: &str) -> Result<Vec<Range<u64>>, ChangeError> {
        let disk = &self.0 .0;
        if id == "*" {
            return Ok(disk.allocated_ranges().map_err(io::Error::from)?);
        }
        let unknown = |why: &str| ChangeError::Unknown {
            id: id.to_owned(),
            why: why.to_owned(),
        };
        let cid = (id.len() == 8)
            .then(|| u32::from_str_radix(id, 16).ok())
            .flatten()
            .ok_or_else(|| unknown("a chain's change id is a link's CID, 8 hex digits"))?;
        disk.written_since(cid)
            .map_err(io::Error::from)?
            .ok_or_else(|| {
                unknown(
                    "no link of the chain has that CID: the disk was written since, its \
                     chain consolidated, or the id is another disk's",
                )
            })
    }
}

/// A local chain opened: the image, its files (head first), and its change tracking.
pub struct OpenedChain {
    pub image: Arc<dyn DiskImage>,
    pub chain: Vec<String>,
    pub change_id: Option<String>,
    pub cbt: Cbt,
    pub changes: Arc<dyn ChangeTracker>,
}

/// Opens the chain headed by `path`.
pub fn open(path: &Path) -> io::Result<OpenedChain> {
    let disk = Disk::open_path(path).map_err(io::Error::from)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let chain = disk
        .chain()
        .iter()
        .map(|f| dir.join(f).display().to_string())
        .collect();
    let image = Arc::new(VmdkImage(disk));
    let changes = ChainChanges(image.clone());
    Ok(OpenedChain {
        change_id: changes.change_id(),
        cbt: changes.cbt(),
        image,
        chain,
        changes: Arc::new(changes),
    })
}

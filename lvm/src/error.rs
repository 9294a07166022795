use std::io;

/// Everything that can go wrong reading LVM2 structures. Each error says where: the
/// device (the name the caller gave [`crate::probe_named`], or a PV's name and uuid), the
/// byte offset on it, and for the metadata text the line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{device}: I/O error reading {len} bytes at offset {offset}: {source}")]
    Io {
        device: String,
        offset: u64,
        len: usize,
        #[source]
        source: io::Error,
    },
    /// A damaged on-disk structure (label, PV header, metadata area header).
    #[error("{device}: {structure} at offset {offset}: {msg}")]
    Corrupt {
        device: String,
        structure: &'static str,
        offset: u64,
        msg: String,
    },
    #[error("{device}: {structure} at offset {offset}: checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        device: String,
        structure: &'static str,
        offset: u64,
        stored: u32,
        computed: u32,
    },
    /// The metadata text does not parse.
    #[error("{device}: metadata text at offset {offset}, line {line}: {msg}")]
    Syntax {
        device: String,
        offset: u64,
        line: usize,
        msg: String,
    },
    /// The metadata text parses but does not describe a usable volume group.
    #[error("volume group {vg}: metadata line {line}: {msg}")]
    Metadata {
        vg: String,
        line: usize,
        msg: String,
    },
    #[error("volume group {vg}: no logical volume {lv}")]
    NoSuchLv { vg: String, lv: String },
    #[error("logical volume {vg}/{lv}: unsupported: {msg}")]
    Unsupported { vg: String, lv: String, msg: String },
    #[error("logical volume {vg}/{lv}: physical volume {pv} is missing")]
    MissingPv { vg: String, lv: String, pv: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// For callers that speak `std::io`: I/O errors keep their kind, an unknown LV is
/// `NotFound`, unsupported layouts are `Unsupported`, damage is `InvalidData`.
impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::Io { source, .. } => source.kind(),
            Error::NoSuchLv { .. } | Error::MissingPv { .. } => io::ErrorKind::NotFound,
            Error::Unsupported { .. } => io::ErrorKind::Unsupported,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

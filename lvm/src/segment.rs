//! One segment of a logical volume (`segmentN { ... }` in the metadata text): a run of
//! the LV's logical extents and how they map onto physical volumes or other LVs.

use crate::metadata::{Section, Value};

/// How a segment's extents are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SegmentKind {
    /// `type = "striped"` with `stripe_count = 1`: extents from `pe` on PV `pv` (the
    /// metadata's PV name, `pv0`...).
    Linear { pv: String, pe: u64 },
    /// `type = "striped"`: chunks of `stripe_size` sectors taken in turn from each
    /// `(pv, pe)`; each stripe holds `extent_count / stripes.len()` extents.
    Striped {
        stripe_size: u64,
        stripes: Vec<(String, u64)>,
    },
    /// `type = "mirror"`: each leg `(lv, le)` is a full copy, `le` the first extent of
    /// this segment in that (hidden `_mimage_N`) LV.
    Mirror {
        legs: Vec<(String, u64)>,
        log: Option<String>,
    },
    /// `type = "raid1"`: each leg is an image LV (`_rimage_N`, a full copy from its
    /// extent 0) with its metadata LV (`_rmeta_N`).
    Raid1 { legs: Vec<RaidLeg> },
    /// `type = "zero"`: reads as zeros.
    Zero,
    /// Anything else: thin, thin-pool, snapshot, cache, raid0/4/5/6/10, vdo, integrity,
    /// error... Reading it is not supported. `origin` and `cow_store` are what a
    /// snapshot, cache or writecache segment names (so those LVs can be marked too).
    Unsupported {
        type_name: String,
        origin: Option<String>,
        cow_store: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaidLeg {
    pub meta: Option<String>,
    pub image: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub start_extent: u64,
    pub extent_count: u64,
    pub kind: SegmentKind,
    /// The line of the segment's section in the metadata text.
    pub line: usize,
}

/// Why a segment section does not make sense: a message and the line.
pub type SegmentError = (usize, String);

fn uint(s: &Section, key: &str) -> Result<u64, SegmentError> {
    let a = s
        .get(key)
        .ok_or_else(|| (s.line, format!("{}: no {key}", s.name)))?;
    a.value
        .as_int()
        .and_then(|i| u64::try_from(i).ok())
        .ok_or_else(|| {
            (
                a.line,
                format!("{}: {key} is not a non-negative integer", s.name),
            )
        })
}

/// `[name, n, name, n, ...]`.
fn pairs(s: &Section, key: &str) -> Result<Vec<(String, u64)>, SegmentError> {
    let a = s
        .get(key)
        .ok_or_else(|| (s.line, format!("{}: no {key}", s.name)))?;
    let bad = || {
        (
            a.line,
            format!("{}: {key} is not a list of name, number pairs", s.name),
        )
    };
    let l = a.value.as_list().ok_or_else(bad)?;
    if l.len() % 2 != 0 || l.is_empty() {
        return Err(bad());
    }
    l.chunks(2)
        .map(|p| match p {
            [Value::Str(n), Value::Int(i)] if *i >= 0 => Ok((n.clone(), *i as u64)),
            _ => Err(bad()),
        })
        .collect()
}

fn names(s: &Section, key: &str) -> Result<Vec<String>, SegmentError> {
    let a = s
        .get(key)
        .ok_or_else(|| (s.line, format!("{}: no {key}", s.name)))?;
    let bad = || (a.line, format!("{}: {key} is not a list of names", s.name));
    a.value
        .as_list()
        .ok_or_else(bad)?
        .iter()
        .map(|v| v.as_str().map(str::to_string).ok_or_else(bad))
        .collect()
}

/// The segment section `s`.
pub fn parse(s: &Section) -> Result<Segment, SegmentError> {
    let start_extent = uint(s, "start_extent")?;
    let extent_count = uint(s, "extent_count")?;
    if extent_count == 0 {
        return Err((s.line, format!("{}: extent_count is 0", s.name)));
    }
    let type_name = s
        .str("type")
        .ok_or_else(|| (s.line, format!("{}: no type", s.name)))?;
    let kind = match type_name {
        "striped" | "linear" => {
            let stripes = pairs(s, "stripes")?;
            let count = match s.get("stripe_count") {
                Some(_) => uint(s, "stripe_count")?,
                None => stripes.len() as u64,
            };
            if count != stripes.len() as u64 {
                return Err((
                    s.line,
                    format!(
                        "{}: stripe_count {count} but {} stripes",
                        s.name,
                        stripes.len()
                    ),
                ));
            }
            if stripes.len() == 1 {
                let (pv, pe) = stripes.into_iter().next().unwrap_or_default();
                SegmentKind::Linear { pv, pe }
            } else {
                let stripe_size = uint(s, "stripe_size")?;
                if stripe_size == 0 {
                    return Err((s.line, format!("{}: stripe_size is 0", s.name)));
                }
                if extent_count % count != 0 {
                    return Err((
                        s.line,
                        format!(
                            "{}: {extent_count} extents do not divide into {count} stripes",
                            s.name
                        ),
                    ));
                }
                SegmentKind::Striped {
                    stripe_size,
                    stripes,
                }
            }
        }
        "mirror" => SegmentKind::Mirror {
            legs: pairs(s, "mirrors")?,
            log: s.str("mirror_log").map(str::to_string),
        },
        "raid1" => {
            // As LVM2 reads it: an `_rmeta_` name is a leg's metadata LV and the next
            // name its image; any other name is an image without metadata.
            let l = names(s, "raids")?;
            let mut legs = Vec::new();
            let mut it = l.into_iter();
            while let Some(name) = it.next() {
                if name.contains("_rmeta_") {
                    let image = it
                        .next()
                        .ok_or_else(|| (s.line, format!("{}: raids ends after {name}", s.name)))?;
                    legs.push(RaidLeg {
                        meta: Some(name),
                        image,
                    });
                } else {
                    legs.push(RaidLeg {
                        meta: None,
                        image: name,
                    });
                }
            }
            if let Some(a) = s.get("device_count") {
                let count = uint(s, "device_count")?;
                if count != legs.len() as u64 {
                    return Err((
                        a.line,
                        format!("{}: device_count {count} but {} legs", s.name, legs.len()),
                    ));
                }
            }
            if legs.is_empty() {
                return Err((s.line, format!("{}: raid1 without legs", s.name)));
            }
            SegmentKind::Raid1 { legs }
        }
        "zero" => SegmentKind::Zero,
        other => SegmentKind::Unsupported {
            type_name: other.to_string(),
            origin: s.str("origin").map(str::to_string),
            cow_store: s.str("cow_store").map(str::to_string),
        },
    };
    Ok(Segment {
        start_extent,
        extent_count,
        kind,
        line: s.line,
    })
}

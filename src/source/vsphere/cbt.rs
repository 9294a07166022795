//! Changed block tracking: what a snapshot's config says of it (the VM's
//! changeTrackingEnabled, each disk's backing changeId), switching it on for
//! `-o cbt=enable`, and the tracker that asks QueryChangedDiskAreas what changed.
//!
//! A host answers QueryChangedDiskAreas for one stretch of the disk at a time: the
//! answer's `startOffset`/`length` say which, and the caller must ask again from its
//! end until the disk's capacity. Asking once (as several backup tools did) silently
//! loses every change past the first stretch, so the loop here is the point.

use std::io;
use std::ops::Range;
use std::sync::Arc;

use crate::source::api::{merge_ranges, Cbt, CbtState, ChangeError, ChangeTracker};

use super::client::Client;
use super::errors::{Result, VsError};
use super::soap::{escape, Element, Moref};
use super::task;

/// `-o cbt=`: whether a freeze may switch tracking on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CbtPolicy {
    /// Only read what the server tracks; never change a VM's configuration.
    Keep,
    /// Switch changeTrackingEnabled on (ReconfigVM_Task) on a VM without snapshots.
    Enable,
}

impl CbtPolicy {
    pub fn parse(s: &str) -> Result<CbtPolicy> {
        match s {
            "keep" => Ok(CbtPolicy::Keep),
            "enable" => Ok(CbtPolicy::Enable),
            _ => Err(VsError::Config(format!("cbt={s}: expected enable or keep"))),
        }
    }
}

/// What happened to tracking at this freeze, before the snapshot was taken.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// changeTrackingEnabled was off just before the snapshot: if the snapshot has it
    /// on, it was switched on at this freeze and there is no earlier id to count from.
    pub was_off: bool,
    /// We switched it on (-o cbt=enable).
    pub switched_on: bool,
    /// Why `-o cbt=enable` did not switch it on.
    pub refused: Option<String>,
}

/// With `-o cbt=enable`, switches changeTrackingEnabled on for `vm` (which has it off)
/// when it has no snapshots; it takes effect at the snapshot about to be taken. With
/// snapshots present the VM is left as it is: tracking switched on under existing
/// snapshots does not cover what they hold, and reconfiguring a VM behind its
/// snapshots is not ours to do.
pub fn prepare(c: &Client, vm: &Moref, vm_name: &str, policy: CbtPolicy) -> Result<Prepared> {
    if policy != CbtPolicy::Enable {
        return Ok(Prepared {
            was_off: true,
            ..Prepared::default()
        });
    }
    let snapshots = super::snapshot::tree(c, vm)?;
    if !snapshots.is_empty() {
        let why = format!(
            "changeTrackingEnabled is off on the VM and -o cbt=enable did not switch it on: \
             the VM has {} snapshot(s) ({}); remove them, then mount again",
            snapshots.len(),
            snapshots
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        tracing::warn!("{vm_name}: {why}");
        return Ok(Prepared {
            was_off: true,
            switched_on: false,
            refused: Some(why),
        });
    }
    match switch_on(c, vm, vm_name) {
        Ok(()) => {
            tracing::info!("{vm_name}: changed block tracking switched on (-o cbt=enable)");
            Ok(Prepared {
                was_off: true,
                switched_on: true,
                refused: None,
            })
        }
        // Not being allowed to reconfigure (a backup role without
        // VirtualMachine.Config.ChangeTracking) must not cost the backup itself.
        Err(e) => {
            let why = format!(
                "changeTrackingEnabled is off on the VM and -o cbt=enable could not switch \
                 it on: {e}"
            );
            tracing::warn!("{vm_name}: {why}");
            Ok(Prepared {
                was_off: true,
                switched_on: false,
                refused: Some(why),
            })
        }
    }
}

/// ReconfigVM_Task with only `changeTrackingEnabled = true`.
fn switch_on(c: &Client, vm: &Moref, vm_name: &str) -> Result<()> {
    let t = c.call(
        "ReconfigVM_Task",
        vm,
        "<spec xsi:type=\"VirtualMachineConfigSpec\">\
         <changeTrackingEnabled>true</changeTrackingEnabled></spec>",
    )?;
    let t = t
        .moref_of("returnval")
        .ok_or_else(|| c.protocol("ReconfigVM_Task", "no task returned".into()))?;
    task::wait(
        c,
        &t,
        &format!("{vm_name}: switching changed block tracking on"),
    )?;
    Ok(())
}

/// A disk's CBT state for status.json, from the snapshot's config.
pub fn state(vm_tracking: bool, change_id: Option<&str>, prepared: &Prepared) -> Cbt {
    if !vm_tracking {
        let why = prepared.refused.clone().unwrap_or_else(|| {
            "changeTrackingEnabled is off on the VM: -o cbt=enable turns it on".into()
        });
        return Cbt::new(CbtState::Disabled, why);
    }
    match change_id {
        None => Cbt::new(
            CbtState::Disabled,
            "changeTrackingEnabled is on but the snapshot gives this disk no changeId \
             (an independent or raw disk, or tracking not yet active: it takes effect at \
             the VM's next power on, resume or snapshot)",
        ),
        Some(_) if prepared.was_off => Cbt::new(
            CbtState::Reset,
            format!(
                "changed block tracking was switched on at this freeze{}: this change_id \
                 is the first, so this backup must be full; the next can count from it",
                if prepared.switched_on {
                    " (-o cbt=enable)"
                } else {
                    ""
                }
            ),
        ),
        Some(_) => Cbt::new(
            CbtState::Enabled,
            "changed block tracking (QueryChangedDiskAreas): changes since an earlier \
             change_id of this disk",
        ),
    }
}

/// One QueryChangedDiskAreas answer (DiskChangeInfo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub start: u64,
    pub length: u64,
    pub areas: Vec<Range<u64>>,
}

/// Reads a DiskChangeInfo (the `returnval` element).
pub fn parse_answer(rv: &Element) -> std::result::Result<Answer, String> {
    let num = |e: &Element, p: &str| -> std::result::Result<u64, String> {
        let t = e.text_of(p).ok_or_else(|| format!("no {p}"))?;
        t.trim()
            .parse::<u64>()
            .map_err(|_| format!("{p} {t:?} is not a non-negative integer"))
    };
    let mut areas = Vec::new();
    for a in rv.children_named("changedArea") {
        let start = num(a, "start")?;
        let length = num(a, "length")?;
        let end = start
            .checked_add(length)
            .ok_or_else(|| format!("area {start}+{length} overflows"))?;
        areas.push(start..end);
    }
    Ok(Answer {
        start: num(rv, "startOffset")?,
        length: num(rv, "length")?,
        areas,
    })
}

/// At most this many calls for one stretch (a host answers a stretch of gigabytes per
/// call): a server that keeps answering tiny stretches is failed, not waited out.
const MAX_CALLS: usize = 1 << 20;
/// Stretches of a disk asked at once. Each call waits for the server (milliseconds
/// against the simulator, tens of them through a busy vCenter), and the calls for one
/// stretch must follow each other; stretches need not.
const STRETCHES: u64 = 8;
/// Stretches start on multiples of this, far coarser than any tracking block, so each
/// first call asks from where a host's own answers could have started.
const STRETCH_ALIGN: u64 = 64 << 20;

/// The changes of a disk of `capacity` bytes: the disk cut into stretches asked at once,
/// each by `query(offset)` from its start and again from the end of each answer until
/// the stretch's end; sorted, merged, within the disk. An answer that does not start
/// where asked, covers nothing, or holds areas outside what it covers is a protocol
/// error (io::ErrorKind::InvalidData); the first stretch's error wins.
pub fn collect(
    capacity: u64,
    query: impl Fn(u64) -> std::result::Result<Answer, ChangeError> + Sync,
) -> std::result::Result<Vec<Range<u64>>, ChangeError> {
    let step = capacity
        .div_ceil(STRETCHES)
        .next_multiple_of(STRETCH_ALIGN)
        .max(STRETCH_ALIGN);
    let stretches: Vec<Range<u64>> = (0..STRETCHES)
        .map(|k| (k * step).min(capacity)..((k + 1) * step).min(capacity))
        .filter(|r| !r.is_empty())
        .collect();
    let answers: Vec<_> = if stretches.len() == 1 {
        vec![follow(stretches[0].clone(), capacity, &query)]
    } else {
        std::thread::scope(|sc| {
            let running: Vec<_> = stretches
                .iter()
                .map(|r| sc.spawn(|| follow(r.clone(), capacity, &query)))
                .collect();
            running
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(ChangeError::Io(io::Error::other(
                            "QueryChangedDiskAreas: a stretch's caller panicked",
                        )))
                    })
                })
                .collect()
        })
    };
    let mut out = Vec::new();
    for a in answers {
        out.extend(a?);
    }
    Ok(merge_ranges(out))
}

/// The changed areas of `stretch`, asking from its start and again from the end of each
/// answer until its end; areas past it are left to the next stretch's calls.
fn follow(
    stretch: Range<u64>,
    capacity: u64,
    query: &impl Fn(u64) -> std::result::Result<Answer, ChangeError>,
) -> std::result::Result<Vec<Range<u64>>, ChangeError> {
    let bad = |what: String| {
        ChangeError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("QueryChangedDiskAreas: {what}"),
        ))
    };
    let mut out: Vec<Range<u64>> = Vec::new();
    let mut offset = stretch.start;
    let mut calls = 0;
    while offset < stretch.end {
        calls += 1;
        if calls > MAX_CALLS {
            return Err(bad(format!(
                "still short of {} at {offset} after {MAX_CALLS} calls",
                stretch.end
            )));
        }
        let a = query(offset)?;
        if a.start != offset {
            return Err(bad(format!(
                "asked from {offset}, answered from {}",
                a.start
            )));
        }
        if a.length == 0 {
            return Err(bad(format!(
                "answer from {offset} covers no bytes (length 0); the disk's capacity is {capacity}"
            )));
        }
        let end = a.start.saturating_add(a.length);
        for r in a.areas {
            if r.start < a.start || r.end > end {
                return Err(bad(format!(
                    "area {}..{} outside the answer's {}..{end}",
                    r.start, r.end, a.start
                )));
            }
            let r = r.start..r.end.min(stretch.end);
            if !r.is_empty() {
                out.push(r);
            }
        }
        offset = end;
    }
    Ok(out)
}

/// One disk of a snapshot, asked through QueryChangedDiskAreas.
pub struct VsChanges {
    pub client: Arc<Client>,
    pub vm: Moref,
    pub snapshot: Moref,
    pub device_key: i32,
    pub capacity: u64,
    /// "VM disk0", for messages.
    pub what: String,
}

impl VsChanges {
    fn query(&self, id: &str, offset: u64) -> std::result::Result<Answer, ChangeError> {
        let args = format!(
            "{}<deviceKey>{}</deviceKey><startOffset>{offset}</startOffset>\
             <changeId>{}</changeId>",
            self.snapshot.xml("snapshot"),
            self.device_key,
            escape(id)
        );
        let r = match self.client.call("QueryChangedDiskAreas", &self.vm, &args) {
            Ok(r) => r,
            // The host cannot count from that id: another disk's, from before tracking
            // was reset (disk moved, resized, tracking switched off), or made up.
            Err(VsError::Fault { kind, message, .. })
                if kind == "FileFault"
                    || (kind == "InvalidArgument" && message.contains("changeId")) =>
            {
                return Err(ChangeError::Unknown {
                    id: id.to_owned(),
                    why: format!("the server says {kind}: {message}"),
                })
            }
            Err(e) => return Err(ChangeError::Io(e.into())),
        };
        let rv = r.child("returnval").ok_or_else(|| {
            ChangeError::Io(
                self.client
                    .protocol("QueryChangedDiskAreas", "no returnval".into())
                    .into(),
            )
        })?;
        parse_answer(rv).map_err(|d| {
            ChangeError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                self.client.protocol("QueryChangedDiskAreas", d).to_string(),
            ))
        })
    }
}

impl ChangeTracker for VsChanges {
    fn changed_since(&self, id: &str) -> std::result::Result<Vec<Range<u64>>, ChangeError> {
        let r = collect(self.capacity, |offset| self.query(id, offset));
        match &r {
            Ok(ranges) => tracing::debug!(
                "{}: since {id:?}: {} extent(s), {} bytes",
                self.what,
                ranges.len(),
                ranges.iter().map(|r| r.end - r.start).sum::<u64>()
            ),
            Err(e) => tracing::debug!("{}: since {id:?}: {e}", self.what),
        }
        r
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // lists of one extent, as answers hold
mod tests {
    use super::*;

    /// A server holding `changed` and answering at most `page` areas per call, length
    /// up to the end of the last one (or the capacity), as a host does.
    fn host(
        capacity: u64,
        changed: &[Range<u64>],
        page: usize,
    ) -> impl Fn(u64) -> std::result::Result<Answer, ChangeError> + Sync + '_ {
        move |offset| {
            let mut areas: Vec<Range<u64>> = changed
                .iter()
                .filter(|r| r.end > offset)
                .map(|r| r.start.max(offset)..r.end)
                .collect();
            let more = areas.len() > page;
            areas.truncate(page);
            let length = if more {
                areas.last().unwrap().end - offset
            } else {
                capacity - offset
            };
            Ok(Answer {
                start: offset,
                length,
                areas,
            })
        }
    }

    #[test]
    fn pages_are_followed_to_the_capacity_and_merged() {
        let changed: Vec<Range<u64>> = (0..20).map(|i| i * 1000..i * 1000 + 100).collect();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let h = host(100_000, &changed, 3);
        let got = collect(100_000, |o| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            h(o)
        })
        .unwrap();
        assert_eq!(got, changed);
        assert_eq!(calls.into_inner(), 7, "20 areas, 3 a call");
        // Adjacent areas from two answers merge.
        let answers = vec![
            Answer {
                start: 0,
                length: 100,
                areas: vec![50..100],
            },
            Answer {
                start: 100,
                length: 100,
                areas: vec![100..150],
            },
        ]
        .into_iter();
        let answers = std::sync::Mutex::new(answers);
        assert_eq!(
            collect(200, |_| Ok(answers.lock().unwrap().next().unwrap())).unwrap(),
            vec![50..150]
        );
        // Nothing changed: one call, no extents.
        assert_eq!(collect(4096, host(4096, &[], 8)).unwrap(), vec![]);
        // A disk of no bytes asks nothing.
        assert_eq!(
            collect(0, |_| panic!("asked about an empty disk")).unwrap(),
            vec![]
        );
    }

    #[test]
    fn a_big_disk_is_asked_in_stretches_at_once_each_followed_to_its_end() {
        const GIB: u64 = 1 << 30;
        // Areas everywhere, one across the first stretch boundary (128 MiB for 1 GiB).
        let mut changed: Vec<Range<u64>> = (0..200)
            .map(|i| (i * 5) << 20..((i * 5) << 20) + 4096)
            .collect();
        changed.push((128 << 20) - 8192..(128 << 20) + 8192);
        changed.sort_by_key(|r| r.start);
        let h = host(GIB, &changed, 4);
        let asked = std::sync::Mutex::new(Vec::new());
        let got = collect(GIB, |o| {
            asked.lock().unwrap().push(o);
            h(o)
        })
        .unwrap();
        assert_eq!(got, changed);
        let asked = asked.into_inner().unwrap();
        for k in 0..8 {
            assert!(
                asked.contains(&((k * 128) << 20)),
                "stretch {k} asked from its start"
            );
        }
        // Each stretch stops at its end: no offset is asked twice.
        let mut unique = asked.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), asked.len(), "{asked:?}");
        // An odd capacity: the last stretch ends at the capacity.
        let odd = GIB + 12345;
        let got = collect(odd, host(odd, &[odd - 10..odd], 4)).unwrap();
        assert_eq!(got, vec![odd - 10..odd]);
        // One stretch failing fails the whole answer.
        let r = collect(GIB, |o| {
            if o >= 512 << 20 {
                return Err(ChangeError::Unknown {
                    id: "x".into(),
                    why: "y".into(),
                });
            }
            h(o)
        });
        assert!(matches!(r, Err(ChangeError::Unknown { .. })));
    }

    #[test]
    fn protocol_errors_end_the_loop() {
        let invalid = |r: std::result::Result<Vec<Range<u64>>, ChangeError>| match r {
            Err(ChangeError::Io(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::InvalidData);
                e.to_string()
            }
            other => panic!("{other:?}"),
        };
        // Length 0 would ask the same forever.
        let e = invalid(collect(1000, |o| {
            Ok(Answer {
                start: o,
                length: 0,
                areas: vec![],
            })
        }));
        assert!(e.contains("length 0"), "{e}");
        let e = invalid(collect(1000, |_| {
            Ok(Answer {
                start: 10,
                length: 10,
                areas: vec![],
            })
        }));
        assert!(e.contains("answered from 10"), "{e}");
        let e = invalid(collect(1000, |o| {
            Ok(Answer {
                start: o,
                length: 100,
                areas: vec![50..150],
            })
        }));
        assert!(e.contains("outside"), "{e}");
        // An area past the capacity is clipped to it.
        assert_eq!(
            collect(120, |o| Ok(Answer {
                start: o,
                length: 200,
                areas: vec![100..200],
            }))
            .unwrap(),
            vec![100..120]
        );
        // Errors of the query pass through.
        let r = collect(10, |_| {
            Err(ChangeError::Unknown {
                id: "x".into(),
                why: "y".into(),
            })
        });
        assert!(matches!(r, Err(ChangeError::Unknown { .. })));
    }

    #[test]
    fn parses_disk_change_info() {
        let root = super::super::soap::parse(
            "<returnval><startOffset>0</startOffset><length>1048576</length>\
             <changedArea><start>0</start><length>65536</length></changedArea>\
             <changedArea><start>131072</start><length>65536</length></changedArea>\
             </returnval>",
        )
        .unwrap();
        assert_eq!(
            parse_answer(&root).unwrap(),
            Answer {
                start: 0,
                length: 1 << 20,
                areas: vec![0..65536, 131072..196608],
            }
        );
        let root = super::super::soap::parse(
            "<returnval><startOffset>0</startOffset><length>-1</length></returnval>",
        )
        .unwrap();
        assert!(parse_answer(&root).is_err());
    }

    #[test]
    fn states_say_why() {
        let none = Prepared::default();
        let s = state(false, None, &none);
        assert_eq!(s.state, CbtState::Disabled);
        assert!(s.why.contains("-o cbt=enable turns it on"), "{}", s.why);
        let refused = Prepared {
            was_off: true,
            switched_on: false,
            refused: Some("has 1 snapshot(s)".into()),
        };
        assert!(state(false, None, &refused).why.contains("snapshot"));
        assert_eq!(state(true, None, &none).state, CbtState::Disabled);
        assert_eq!(state(true, Some("52 aa/1"), &none).state, CbtState::Enabled);
        let on = Prepared {
            was_off: true,
            switched_on: true,
            refused: None,
        };
        let s = state(true, Some("52 aa/1"), &on);
        assert_eq!(s.state, CbtState::Reset);
        assert!(s.why.contains("cbt=enable"), "{}", s.why);
        // Off when listed, on in the snapshot (a reconfigure whose answer was lost, or
        // the admin's): still the first id.
        let raced = Prepared {
            was_off: true,
            switched_on: false,
            refused: Some("lost".into()),
        };
        assert_eq!(state(true, Some("52 aa/1"), &raced).state, CbtState::Reset);
    }

    /// A server that logs in anyone and answers QueryChangedDiskAreas by its changeId:
    /// `*` from a disk of 1 MiB with 64 KiB changed every 128 KiB, two areas an answer;
    /// `old` a FileFault, `bad<id` an InvalidArgument on changeId, `zero` length 0,
    /// `drop` a closed connection. Records each QueryChangedDiskAreas body.
    fn server(bodies: Arc<std::sync::Mutex<Vec<String>>>) -> u16 {
        use std::io::{BufRead, BufReader, Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        fn env(b: &str) -> String {
            format!(
                "<?xml version=\"1.0\"?><soapenv:Envelope \
                 xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
                 xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>{b}\
                 </soapenv:Body></soapenv:Envelope>"
            )
        }
        fn fault(kind: &str, msg: &str) -> String {
            env(&format!(
                "<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>{msg}\
                 </faultstring><detail><{kind}Fault xmlns=\"urn:vim25\" xsi:type=\"{kind}\"/>\
                 </detail></soapenv:Fault>"
            ))
        }
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { return };
                let bodies = bodies.clone();
                std::thread::spawn(move || {
                    let mut r = BufReader::new(conn.try_clone().unwrap());
                    let mut w = conn;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut len = 0;
                        loop {
                            let mut h = String::new();
                            r.read_line(&mut h).unwrap();
                            if h.trim().is_empty() {
                                break;
                            }
                            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:")
                            {
                                len = v.trim().parse().unwrap();
                            }
                        }
                        let mut body = vec![0u8; len];
                        r.read_exact(&mut body).unwrap();
                        let body = String::from_utf8_lossy(&body).into_owned();
                        let between = |a: &str, b: &str| {
                            let i = body.find(a).map(|i| i + a.len()).unwrap_or(0);
                            body[i..].split(b).next().unwrap_or("").to_owned()
                        };
                        let (status, answer) = if line.contains("vimServiceVersions") {
                            (200, "<namespaces/>".to_owned())
                        } else if body.contains("<RetrieveServiceContent") {
                            (200, env("<RetrieveServiceContentResponse xmlns=\"urn:vim25\"><returnval>\
                                 <rootFolder type=\"Folder\">f</rootFolder>\
                                 <propertyCollector type=\"PropertyCollector\">pc</propertyCollector>\
                                 <viewManager type=\"ViewManager\">v</viewManager>\
                                 <sessionManager type=\"SessionManager\">sm</sessionManager>\
                                 <searchIndex type=\"SearchIndex\">si</searchIndex>\
                                 <about><apiVersion>7.0</apiVersion><apiType>HostAgent</apiType></about>\
                                 </returnval></RetrieveServiceContentResponse>"))
                        } else if body.contains("<Login") {
                            (200, env("<LoginResponse xmlns=\"urn:vim25\"><returnval/></LoginResponse>"))
                        } else if body.contains("<QueryChangedDiskAreas") {
                            bodies.lock().unwrap().push(body.clone());
                            let at: u64 = between("<startOffset>", "<").parse().unwrap();
                            match between("<changeId>", "<").as_str() {
                                "old" => (
                                    500,
                                    fault("FileFault", "Error caused by file [ds] vm/vm.vmdk"),
                                ),
                                "bad&lt;id" => (
                                    500,
                                    fault(
                                        "InvalidArgument",
                                        "A specified parameter was not correct: changeId",
                                    ),
                                ),
                                "zero" => (
                                    200,
                                    env(&format!(
                                    "<QueryChangedDiskAreasResponse xmlns=\"urn:vim25\"><returnval>\
                                     <startOffset>{at}</startOffset><length>0</length>\
                                     </returnval></QueryChangedDiskAreasResponse>"
                                )),
                                ),
                                "drop" => return,
                                _ => {
                                    let mut areas: Vec<u64> =
                                        (0..8u64).map(|k| k << 17).filter(|&s| s >= at).collect();
                                    // Up to the last area's end while more follow, else to
                                    // the capacity, as a host answers.
                                    let more = areas.len() > 2;
                                    areas.truncate(2);
                                    let end = if more { areas[1] + (1 << 16) } else { 1 << 20 };
                                    let list: String = areas
                                        .iter()
                                        .map(|s| format!(
                                            "<changedArea><start>{s}</start><length>65536</length></changedArea>"
                                        ))
                                        .collect();
                                    (200, env(&format!(
                                        "<QueryChangedDiskAreasResponse xmlns=\"urn:vim25\"><returnval>\
                                         <startOffset>{at}</startOffset><length>{}</length>{list}\
                                         </returnval></QueryChangedDiskAreasResponse>",
                                        end - at
                                    )))
                                }
                            }
                        } else {
                            (200, env("<x/>"))
                        };
                        let head = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\n\
                             Set-Cookie: vmware_soap_session=\"s\"; Path=/\r\n\
                             Content-Length: {}\r\n\r\n",
                            answer.len()
                        );
                        if w.write_all(head.as_bytes()).is_err()
                            || w.write_all(answer.as_bytes()).is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        port
    }

    #[test]
    fn the_tracker_asks_the_server_page_by_page_and_maps_its_faults() {
        let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
        let port = server(bodies.clone());
        let c = Client::connect(super::super::client::ConnectConfig {
            base: format!("http://127.0.0.1:{port}"),
            host: "127.0.0.1".into(),
            port,
            creds: super::super::credentials::Credentials {
                username: "u".into(),
                password: "p".into(),
            },
            thumbprint: None,
            insecure: false,
            soap_timeout: std::time::Duration::from_secs(2),
        })
        .unwrap();
        let t = VsChanges {
            client: c,
            vm: Moref::new("VirtualMachine", "vm-7"),
            snapshot: Moref::new("VirtualMachineSnapshot", "snapshot-9"),
            device_key: 2000,
            capacity: 1 << 20,
            what: "vm disk0".into(),
        };
        let all = t.changed_since("*").unwrap();
        assert_eq!(
            all,
            (0..8u64)
                .map(|k| k << 17..(k << 17) + 65536)
                .collect::<Vec<_>>()
        );
        {
            let b = bodies.lock().unwrap();
            assert_eq!(b.len(), 4, "8 areas, 2 an answer");
            assert!(
                b[0].contains(
                    "<_this type=\"VirtualMachine\">vm-7</_this>\
                 <snapshot type=\"VirtualMachineSnapshot\">snapshot-9</snapshot>\
                 <deviceKey>2000</deviceKey><startOffset>0</startOffset><changeId>*</changeId>"
                ),
                "{}",
                b[0]
            );
            assert!(
                b[1].contains("<startOffset>196608</startOffset>"),
                "{}",
                b[1]
            );
        }
        match t.changed_since("old") {
            Err(ChangeError::Unknown { id, why }) => {
                assert_eq!(id, "old");
                assert!(
                    why.contains("FileFault") && why.contains("vm.vmdk"),
                    "{why}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            t.changed_since("bad<id"),
            Err(ChangeError::Unknown { .. })
        ));
        match t.changed_since("zero") {
            Err(ChangeError::Io(e)) => assert!(e.to_string().contains("length 0"), "{e}"),
            other => panic!("{other:?}"),
        }
        match t.changed_since("drop") {
            Err(ChangeError::Io(e)) => assert!(e.to_string().contains("127.0.0.1"), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}

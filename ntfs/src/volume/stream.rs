//! Reading data streams: plain, sparse, LZNT1-compressed and WOF-compressed.

use super::*;

impl Volume {
    pub(super) fn data_attr<'a>(
        &self,
        f: &'a FileInfo,
        stream: Option<&str>,
    ) -> Result<&'a Attribute> {
        let wanted = stream.map(name::to_utf16).unwrap_or_default();
        f.find(DATA, &wanted).ok_or_else(|| Error::NoSuchStream {
            record: f.record,
            stream: stream.unwrap_or("").to_string(),
        })
    }

    pub(super) fn read_attr(
        &self,
        n: u64,
        a: &Attribute,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize> {
        if a.flags & ah::FLAG_ENCRYPTED != 0 {
            return Err(Error::Encrypted { record: n });
        }
        let nr = match &a.value {
            Value::Resident(v) => {
                if offset >= v.len() as u64 {
                    return Ok(0);
                }
                let src = &v[offset as usize..];
                let len = src.len().min(buf.len());
                buf[..len].copy_from_slice(&src[..len]);
                return Ok(len);
            }
            Value::NonResident(nr) => nr,
        };
        if offset >= nr.data_size {
            return Ok(0);
        }
        let (len, valid) = clip(nr, offset, buf.len() as u64);
        let (len, valid) = (len as usize, valid as usize);
        let buf = &mut buf[..len];
        if a.flags & ah::FLAG_COMPRESSED != 0 && nr.compression_unit != 0 {
            self.read_compressed(n, a, nr, offset, &mut buf[..valid])?;
        } else {
            self.read_runs(&nr.runs, offset, &mut buf[..valid], n)?;
        }
        buf[valid..].fill(0);
        Ok(len)
    }

    pub(super) fn unit_bytes(&self, n: u64, nr: &NonResident) -> Result<u64> {
        let ub = (self.boot.cluster_size as u64) << nr.compression_unit;
        if ub > MAX_COMPRESSION_UNIT {
            return Err(Error::Unsupported {
                record: n,
                msg: format!("compression unit of {ub} bytes"),
            });
        }
        Ok(ub)
    }

    pub(super) fn read_compressed(
        &self,
        n: u64,
        a: &Attribute,
        nr: &NonResident,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<()> {
        let ub = self.unit_bytes(n, nr)?;
        let key = stream_key(a.type_code, &a.name);
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let unit = pos / ub;
            let data = self.units.get_or_try_insert((n, key, unit), || {
                self.decode_unit(n, nr, unit, ub).map(Arc::new)
            })?;
            let in_unit = (pos % ub) as usize;
            let take = (data.len() - in_unit).min(buf.len() - done);
            buf[done..done + take].copy_from_slice(&data[in_unit..in_unit + take]);
            done += take;
        }
        Ok(())
    }

    /// One LZNT1 compression unit: all sparse → zeros; fully allocated → stored raw;
    /// otherwise its allocated clusters hold the compressed stream.
    pub(super) fn decode_unit(
        &self,
        n: u64,
        nr: &NonResident,
        unit: u64,
        ub: u64,
    ) -> Result<Vec<u8>> {
        self.counters.units_decoded.fetch_add(1, Relaxed);
        let cs = self.boot.cluster_size as u64;
        let uc = ub / cs;
        let vcn0 = unit * uc;
        let mut pieces = Vec::new();
        let mut allocated = 0u64;
        let mut vcn = vcn0;
        while vcn < vcn0 + uc {
            let Some(r) = runlist::find(&nr.runs, vcn) else {
                break;
            };
            let take = r.end_vcn().min(vcn0 + uc) - vcn;
            if let Some(l) = r.lcn {
                pieces.push((l + (vcn - r.vcn), take));
                allocated += take;
            }
            vcn += take;
        }
        let mut out = vec![0u8; ub as usize];
        if allocated == 0 {
            return Ok(out);
        }
        let mut raw = vec![0u8; (allocated * cs) as usize];
        let mut at = 0usize;
        for (lcn, len) in pieces {
            let bytes = (len * cs) as usize;
            let disk = lcn
                .checked_mul(cs)
                .ok_or_else(|| Error::corrupt(n, "cluster offset overflows"))?;
            self.read_disk(disk, &mut raw[at..at + bytes], n)?;
            at += bytes;
        }
        if allocated >= uc {
            return Ok(raw);
        }
        lznt1::decompress(&raw, &mut out).map_err(|msg| Error::Decompress {
            record: n,
            what: "LZNT1 unit",
            offset: unit * ub,
            msg,
        })?;
        Ok(out)
    }

    /// Positional read of a data stream (`None` = the unnamed one). Returns fewer bytes
    /// than asked only at end of stream. WOF-compressed files are decompressed.
    pub fn read(
        &self,
        id: FileId,
        stream: Option<&str>,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize> {
        let f = self.file(id.0)?;
        if stream.is_none() {
            if let Some(w) = self.wof_info(&f)? {
                return self.read_wof(&f, &w, offset, buf);
            }
        }
        let a = self.stream_attr(&f, stream)?;
        self.read_attr(id.0, a, offset, buf)
    }

    /// The stream's attribute, once its content is known to be on this volume.
    fn stream_attr<'a>(&self, f: &'a FileInfo, stream: Option<&str>) -> Result<&'a Attribute> {
        let a = self.data_attr(f, stream)?;
        if stream.is_none() && f.has_reparse_point() {
            self.check_content_on_volume(f, a)?;
        }
        Ok(a)
    }

    /// Where the bytes `read` would return lie on the volume's source, appended to
    /// `out`: their count (short at the end of the stream), or None when some are not
    /// plain clusters (resident, compressed, encrypted or WOF data, or damage that
    /// `read` reports as an error), and the caller reads them instead.
    pub fn place(
        &self,
        id: FileId,
        stream: Option<&str>,
        offset: u64,
        len: u64,
        out: &mut Places,
    ) -> Option<u64> {
        let f = self.file(id.0).ok()?;
        if stream.is_none() && self.wof_info(&f).ok()?.is_some() {
            return None;
        }
        let a = self.stream_attr(&f, stream).ok()?;
        let Value::NonResident(nr) = &a.value else {
            return None;
        };
        if a.flags & ah::FLAG_ENCRYPTED != 0
            || (a.flags & ah::FLAG_COMPRESSED != 0 && nr.compression_unit != 0)
        {
            return None;
        }
        let (len, valid) = clip(nr, offset, len);
        if !self.place_runs(&nr.runs, offset, valid, out) {
            return None;
        }
        out.zero(len - valid);
        Some(len)
    }

    /// Dedup, cloud-files and HSM reparse points can leave the unnamed stream as one
    /// big hole while the content lives elsewhere; reading that as zeros would hand a
    /// backup garbage, so it is an error instead.
    pub(super) fn check_content_on_volume(&self, f: &FileInfo, a: &Attribute) -> Result<()> {
        let Value::NonResident(nr) = &a.value else {
            return Ok(());
        };
        if nr.data_size == 0 || nr.runs.iter().any(|r| r.lcn.is_some()) {
            return Ok(());
        }
        let tag = match self.reparse_data(f)? {
            Some(rp) => reparse_point::tag(&rp)
                .map_err(|e| Error::corrupt(f.record, format!("reparse data truncated: {e}")))?,
            None => return Ok(()),
        };
        if reparse_point::is_link_tag(tag) {
            return Ok(());
        }
        Err(Error::Unsupported {
            record: f.record,
            msg: format!(
                "reparse tag {tag:#010x}: the file's content is stored outside this volume"
            ),
        })
    }

    pub(super) fn reparse_data(&self, f: &FileInfo) -> Result<Option<Vec<u8>>> {
        match f.find(REPARSE_POINT, &[]) {
            Some(a) => Ok(Some(self.attr_value(f.record, a, MAX_REPARSE)?)),
            None => Ok(None),
        }
    }

    pub(super) fn wof_info(&self, f: &FileInfo) -> Result<Option<wof::WofFile>> {
        if !f.has_reparse_point() {
            return Ok(None);
        }
        let Some(rp) = self.reparse_data(f)? else {
            return Ok(None);
        };
        if reparse_point::tag(&rp) != Ok(reparse_point::TAG_WOF) {
            return Ok(None);
        }
        let alg = wof::parse_reparse(&rp).map_err(|msg| Error::Unsupported {
            record: f.record,
            msg,
        })?;
        let stream = name::to_utf16(wof::STREAM_NAME);
        let Some(sa) = f.find(DATA, &stream) else {
            // Not (or no longer) compressed: the unnamed stream holds the data.
            return Ok(None);
        };
        let size = match f.data().map(|a| &a.value) {
            Some(Value::NonResident(nr)) => nr.data_size,
            Some(Value::Resident(v)) => v.len() as u64,
            None => 0,
        };
        let stream_size = match &sa.value {
            Value::NonResident(nr) => nr.data_size,
            Value::Resident(v) => v.len() as u64,
        };
        Ok(Some(wof::WofFile {
            algorithm: alg,
            size,
            stream_size,
        }))
    }

    pub(super) fn read_wof(
        &self,
        f: &FileInfo,
        w: &wof::WofFile,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize> {
        let n = f.record;
        let stream = name::to_utf16(wof::STREAM_NAME);
        let sa = f
            .find(DATA, &stream)
            .ok_or_else(|| Error::corrupt(n, "WofCompressedData vanished"))?;
        if offset >= w.size {
            return Ok(0);
        }
        let len = ((w.size - offset).min(buf.len() as u64)) as usize;
        let chunk = w.algorithm.chunk_size() as u64;
        let key = stream_key(DATA, &stream);
        let mut done = 0usize;
        while done < len {
            let pos = offset + done as u64;
            let idx = pos / chunk;
            let data = self.units.get_or_try_insert((n, key, idx), || {
                let mut read = |off: u64, b: &mut [u8]| -> std::result::Result<(), String> {
                    match fill(b, |at, piece| self.read_attr(n, sa, off + at as u64, piece)) {
                        Ok(got) if got == b.len() => Ok(()),
                        Ok(_) => Err("compressed stream shorter than its chunk table says".into()),
                        Err(e) => Err(e.to_string()),
                    }
                };
                self.counters.units_decoded.fetch_add(1, Relaxed);
                wof::read_chunk(w, idx, &mut read)
                    .map(Arc::new)
                    .map_err(|msg| Error::Decompress {
                        record: n,
                        what: "WOF chunk",
                        offset: idx * chunk,
                        msg,
                    })
            })?;
            let in_chunk = (pos % chunk) as usize;
            let take = (data.len().saturating_sub(in_chunk)).min(len - done);
            if take == 0 {
                return Err(Error::corrupt(n, "WOF chunk shorter than expected"));
            }
            buf[done..done + take].copy_from_slice(&data[in_chunk..in_chunk + take]);
            done += take;
        }
        Ok(len)
    }

    /// Byte ranges of `stream` backed by storage; everything else reads as zeros
    /// (SEEK_DATA / SEEK_HOLE). Ranges are sorted, disjoint and clipped to the size.
    pub fn allocated_ranges(&self, id: FileId, stream: Option<&str>) -> Result<Vec<Range<u64>>> {
        let f = self.file(id.0)?;
        if stream.is_none() {
            if let Some(w) = self.wof_info(&f)? {
                return Ok(std::iter::once(0..w.size)
                    .filter(|r| !r.is_empty())
                    .collect());
            }
        }
        let a = self.data_attr(&f, stream)?;
        let nr = match &a.value {
            Value::Resident(v) => {
                return Ok(std::iter::once(0..v.len() as u64)
                    .filter(|r| !r.is_empty())
                    .collect())
            }
            Value::NonResident(nr) => nr,
        };
        let cs = self.boot.cluster_size as u64;
        let granule = if a.flags & ah::FLAG_COMPRESSED != 0 && nr.compression_unit != 0 {
            self.unit_bytes(id.0, nr)?
        } else {
            cs
        };
        let mut out: Vec<Range<u64>> = Vec::new();
        for r in nr.runs.iter().filter(|r| r.lcn.is_some()) {
            let start = (r.vcn.saturating_mul(cs) / granule).saturating_mul(granule);
            let end = r
                .end_vcn()
                .saturating_mul(cs)
                .div_ceil(granule)
                .saturating_mul(granule);
            let (start, end) = (start.min(nr.data_size), end.min(nr.data_size));
            if start >= end {
                continue;
            }
            match out.last_mut() {
                Some(last) if last.end >= start => last.end = last.end.max(end),
                _ => out.push(start..end),
            }
        }
        Ok(out)
    }

    /// Named data streams (alternate data streams) of a file.
    pub fn streams(&self, id: FileId) -> Result<Vec<StreamInfo>> {
        let f = self.file(id.0)?;
        Ok(f.attrs
            .iter()
            .filter(|a| a.type_code == DATA && !a.name.is_empty())
            .map(|a| StreamInfo {
                name: name::from_utf16(&a.name),
                size: match &a.value {
                    Value::Resident(v) => v.len() as u64,
                    Value::NonResident(nr) => nr.data_size,
                },
            })
            .collect())
    }
}

/// Of `want` bytes at `offset` of a non-resident stream: how many there are (none past
/// its end), and how many of those lie below the initialized size (the rest read as
/// zeros).
fn clip(nr: &NonResident, offset: u64, want: u64) -> (u64, u64) {
    let size = nr.data_size;
    let len = size.saturating_sub(offset).min(want);
    let valid = nr
        .initialized_size
        .min(size)
        .saturating_sub(offset)
        .min(len);
    (len, valid)
}

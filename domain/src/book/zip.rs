//! A minimal ZIP writer (entries STORED, no compression) and reader of such archives:
//! enough for EPUB, whose `mimetype` entry must come first and be stored uncompressed.

/// One entry of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    /// Its path inside the archive.
    pub name: String,
    /// Its bytes.
    pub data: Vec<u8>,
    /// Its compression method as stored (0 = stored).
    pub method: u16,
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// Writes `entries` (name, bytes) as a ZIP archive with every entry stored, in order.
pub fn write_stored_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    // DOS date 1980-01-01, time 00:00: the archive's bytes depend on its content only.
    const DOS_TIME: u16 = 0;
    const DOS_DATE: u16 = (1 << 5) | 1;
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        let crc = crc32(data);
        let size = data.len() as u32;
        let name_len = name.len() as u16;
        // Bit 11: the name is UTF-8.
        let flags: u16 = if name.is_ascii() { 0 } else { 1 << 11 };
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&10u16.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&DOS_TIME.to_le_bytes());
        out.extend_from_slice(&DOS_DATE.to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&10u16.to_le_bytes());
        central.extend_from_slice(&flags.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&DOS_TIME.to_le_bytes());
        central.extend_from_slice(&DOS_DATE.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&name_len.to_le_bytes());
        central.extend_from_slice(&[0; 12]); // extra, comment, disk, internal, external (4)
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    let cd_size = central.len() as u32;
    let count = entries.len() as u16;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads the local entries of an archive in file order (stored entries keep their bytes;
/// compressed ones are returned with their compressed bytes and `method`). `None` when
/// the bytes are not such an archive or an entry's CRC does not match.
pub fn read_stored_zip(bytes: &[u8]) -> Option<Vec<ZipEntry>> {
    let mut entries = Vec::new();
    let mut at = 0usize;
    while u32_at(bytes, at)? == 0x0403_4b50 {
        let method = u16_at(bytes, at + 8)?;
        let crc = u32_at(bytes, at + 14)?;
        let size = u32_at(bytes, at + 18)? as usize;
        let name_len = usize::from(u16_at(bytes, at + 26)?);
        let extra_len = usize::from(u16_at(bytes, at + 28)?);
        let name_at = at + 30;
        let data_at = name_at + name_len + extra_len;
        let name = String::from_utf8(bytes.get(name_at..name_at + name_len)?.to_vec()).ok()?;
        let data = bytes.get(data_at..data_at + size)?.to_vec();
        if method == 0 && crc32(&data) != crc {
            return None;
        }
        entries.push(ZipEntry { name, data, method });
        at = data_at + size;
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_a_known_string() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn written_entries_read_back_in_order() {
        let zip = write_stored_zip(&[
            ("mimetype", b"application/epub+zip"),
            ("a/b.txt", "中文".as_bytes()),
        ]);
        let entries = read_stored_zip(&zip).unwrap_or_default();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].name, "mimetype");
        assert_eq!(entries[0].data, b"application/epub+zip");
        assert_eq!(entries[1].data, "中文".as_bytes());
        assert!(entries.iter().all(|e| e.method == 0));
    }
}

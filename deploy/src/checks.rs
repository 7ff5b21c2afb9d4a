//! Checks made before anything is registered, reported together with the stack
//! configuration's problems: the Lambda artifact (a zip whose `bootstrap` is an
//! executable 64-bit little-endian ELF for aarch64), its freshness (the manifest hash
//! written next to it equals this program's), and what SQS allows of the service's
//! consumers.
//!
//! The zip is read by hand (end of central directory, central directory, local
//! header), and the entry's first bytes are inflated by [`inflate_prefix`], a small
//! RFC 1951 decoder that stops once it has the ELF header: no zip or deflate crate.

use std::path::Path;

use sha2::Digest;
use switchboard_core::manifest::MANIFEST_HASH_FILE;

use crate::model::{FunctionKind, Service};

/// SQS's largest batch for a FIFO queue's event source mapping.
pub const MAX_FIFO_BATCH: u32 = 10;
/// ELF's machine number for AArch64 (`EM_AARCH64`).
pub const EM_AARCH64: u16 = 0xB7;

/// Why the artifact or the service cannot be deployed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArtifactError {
    /// Not a zip file (or a truncated one).
    #[error("is not a zip file ({0})")]
    NotAZip(&'static str),
    /// No `bootstrap` entry at the top of the zip.
    #[error(
        "has no `bootstrap` at its top level (Lambda's provided.al2023 runtime runs `bootstrap`)"
    )]
    NoBootstrap,
    /// A compression method other than stored or deflate.
    #[error("stores `bootstrap` with compression method {0} (only stored and deflate are read)")]
    Method(u16),
    /// The deflate stream is corrupt.
    #[error("has a corrupt `bootstrap` entry ({0})")]
    Corrupt(&'static str),
    /// `bootstrap` is not an ELF executable.
    #[error("has a `bootstrap` that is not an ELF executable")]
    NotElf,
    /// `bootstrap` is an ELF for another machine or word size.
    #[error(
        "has a `bootstrap` for ELF machine {machine:#x} ({class}-bit), not aarch64 (0xb7, 64-bit): the functions are arm64; build with `cargo lambda build --arm64`"
    )]
    WrongArch {
        /// `e_machine`.
        machine: u16,
        /// 32 or 64.
        class: u8,
    },
    /// `bootstrap` has no execute permission in the zip.
    #[error("has a `bootstrap` without execute permission (mode {0:o}); Lambda cannot run it")]
    NotExecutable(u32),
}

/// The artifact's problems and its SHA-256 (hex, when it could be read).
pub fn artifact(path: &Path, expected_manifest: &str, package: &str) -> (String, Vec<String>) {
    let mut problems = Vec::new();
    let shown = path.display();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(_) => {
            problems.push(format!(
                "the Lambda artifact {shown} does not exist: build it first (cargo lambda build --arm64 --profile lambda -p {package} --output-format zip), or set `artifact`"
            ));
            return (String::new(), problems);
        }
    };
    if let Err(e) = check_bootstrap(&bytes) {
        problems.push(format!("the Lambda artifact {shown} {e}"));
    }
    let hash_file = path.with_file_name(MANIFEST_HASH_FILE);
    match std::fs::read_to_string(&hash_file) {
        Ok(found) if found.trim() == expected_manifest => {}
        Ok(found) => problems.push(format!(
            "the Lambda artifact was built from another manifest ({} says {}, this program's is {expected_manifest}): rebuild the artifact and this program from the same source",
            hash_file.display(),
            found.trim()
        )),
        Err(_) => problems.push(format!(
            "{} is missing: write it when you build the artifact (cargo run -q -p {package} -- manifest --sha256 > {})",
            hash_file.display(),
            hash_file.display()
        )),
    }
    let digest = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (digest, problems)
}

/// What SQS and Lambda refuse of the service, found before registering anything.
pub fn service(service: &Service) -> Vec<String> {
    let mut problems = Vec::new();
    for f in &service.functions {
        if let FunctionKind::Consumer { queue, batch_size } = &f.kind
            && *batch_size > MAX_FIFO_BATCH
        {
            problems.push(format!(
                "the consumer of queue `{queue}` takes batches of {batch_size}: a FIFO queue's event source mapping takes at most {MAX_FIFO_BATCH}"
            ));
        }
    }
    problems
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Checks that the zip's `bootstrap` is an executable aarch64 ELF.
pub fn check_bootstrap(zip: &[u8]) -> Result<(), ArtifactError> {
    let entry = find_entry(zip, "bootstrap")?;
    if entry.made_by_unix {
        let mode = entry.external_attrs >> 16;
        if mode != 0 && mode & 0o111 == 0 {
            return Err(ArtifactError::NotExecutable(mode & 0o7777));
        }
    }
    let data = zip
        .get(entry.data_start..entry.data_start + entry.compressed_size)
        .ok_or(ArtifactError::NotAZip("an entry runs past the end"))?;
    let head = match entry.method {
        0 => data.get(..20).map(<[u8]>::to_vec).unwrap_or_default(),
        8 => inflate_prefix(data, 20)?,
        m => return Err(ArtifactError::Method(m)),
    };
    check_elf(&head)
}

/// Checks an ELF header's magic, class, byte order and machine.
pub fn check_elf(head: &[u8]) -> Result<(), ArtifactError> {
    if head.len() < 20 || head[..4] != *b"\x7fELF" {
        return Err(ArtifactError::NotElf);
    }
    let class = if head[4] == 2 { 64 } else { 32 };
    let machine = if head[5] == 1 {
        u16::from_le_bytes([head[18], head[19]])
    } else {
        u16::from_be_bytes([head[18], head[19]])
    };
    if class != 64 || head[5] != 1 || machine != EM_AARCH64 {
        return Err(ArtifactError::WrongArch { machine, class });
    }
    Ok(())
}

struct Entry {
    method: u16,
    compressed_size: usize,
    data_start: usize,
    external_attrs: u32,
    made_by_unix: bool,
}

/// The entry named `name`, from the central directory.
fn find_entry(zip: &[u8], name: &str) -> Result<Entry, ArtifactError> {
    let bad = ArtifactError::NotAZip;
    let search_from = zip.len().saturating_sub(22 + 0xFFFF);
    let eocd = (search_from..zip.len().saturating_sub(21))
        .rev()
        .find(|&i| u32_at(zip, i) == Some(0x0605_4b50))
        .ok_or(bad("no end of central directory"))?;
    let entries = u16_at(zip, eocd + 10).ok_or(bad("short end record"))?;
    let mut at = u32_at(zip, eocd + 16).ok_or(bad("short end record"))? as usize;
    for _ in 0..entries {
        if u32_at(zip, at) != Some(0x0201_4b50) {
            return Err(bad("a broken central directory"));
        }
        let field = |off: usize| u16_at(zip, at + off).ok_or(bad("a short directory entry"));
        let (name_len, extra_len, comment_len) = (field(28)?, field(30)?, field(32)?);
        let entry_name = zip
            .get(at + 46..at + 46 + usize::from(name_len))
            .ok_or(bad("a short directory entry"))?;
        if entry_name == name.as_bytes() {
            let local = u32_at(zip, at + 42).ok_or(bad("a short directory entry"))? as usize;
            if u32_at(zip, local) != Some(0x0403_4b50) {
                return Err(bad("a broken local header"));
            }
            let local_name = u16_at(zip, local + 26).ok_or(bad("a short local header"))?;
            let local_extra = u16_at(zip, local + 28).ok_or(bad("a short local header"))?;
            return Ok(Entry {
                method: field(10)?,
                compressed_size: u32_at(zip, at + 20).ok_or(bad("a short directory entry"))?
                    as usize,
                data_start: local + 30 + usize::from(local_name) + usize::from(local_extra),
                external_attrs: u32_at(zip, at + 38).ok_or(bad("a short directory entry"))?,
                made_by_unix: field(4)? >> 8 == 3,
            });
        }
        at += 46 + usize::from(name_len) + usize::from(extra_len) + usize::from(comment_len);
    }
    Err(ArtifactError::NoBootstrap)
}

/// Reads a deflate stream's bits, least significant first.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    buf: u32,
    count: u32,
}

impl Bits<'_> {
    fn take(&mut self, n: u32) -> Result<u32, ArtifactError> {
        while self.count < n {
            let byte = *self
                .data
                .get(self.pos)
                .ok_or(ArtifactError::Corrupt("the stream ends early"))?;
            self.pos += 1;
            self.buf |= u32::from(byte) << self.count;
            self.count += 8;
        }
        let v = self.buf & ((1u32 << n) - 1);
        self.buf = self.buf.checked_shr(n).unwrap_or(0);
        self.count -= n;
        Ok(v)
    }
}

/// A canonical Huffman code: how many codes of each length, the symbols in order.
struct Huffman {
    counts: [u16; 16],
    symbols: Vec<u16>,
}

impl Huffman {
    fn new(lengths: &[u8]) -> Self {
        let mut counts = [0u16; 16];
        for &l in lengths {
            counts[usize::from(l)] += 1;
        }
        counts[0] = 0;
        let mut offsets = [0u16; 16];
        for len in 1..15 {
            offsets[len + 1] = offsets[len] + counts[len];
        }
        let mut symbols = vec![0u16; lengths.len()];
        for (sym, &l) in lengths.iter().enumerate() {
            if l != 0 {
                symbols[usize::from(offsets[usize::from(l)])] = sym as u16;
                offsets[usize::from(l)] += 1;
            }
        }
        Self { counts, symbols }
    }

    fn decode(&self, bits: &mut Bits<'_>) -> Result<u16, ArtifactError> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= bits.take(1)? as i32;
            let count = i32::from(self.counts[len]);
            if code - count < first {
                return self
                    .symbols
                    .get((index + code - first) as usize)
                    .copied()
                    .ok_or(ArtifactError::Corrupt("a bad code"));
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err(ArtifactError::Corrupt("a code longer than 15 bits"))
    }
}

const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// The first `want` bytes (fewer if the stream is shorter) of a raw deflate stream.
pub fn inflate_prefix(data: &[u8], want: usize) -> Result<Vec<u8>, ArtifactError> {
    let mut bits = Bits {
        data,
        pos: 0,
        buf: 0,
        count: 0,
    };
    let mut out = Vec::new();
    loop {
        let last = bits.take(1)? == 1;
        match bits.take(2)? {
            0 => stored(&mut bits, &mut out)?,
            1 => {
                let mut lengths = [8u8; 288];
                lengths[144..256].fill(9);
                lengths[256..280].fill(7);
                let codes = (Huffman::new(&lengths), Huffman::new(&[5u8; 30]));
                block(&mut bits, &mut out, &codes, want)?;
            }
            2 => {
                let codes = dynamic_codes(&mut bits)?;
                block(&mut bits, &mut out, &codes, want)?;
            }
            _ => return Err(ArtifactError::Corrupt("block type 3")),
        }
        if last || out.len() >= want {
            out.truncate(want);
            return Ok(out);
        }
    }
}

fn stored(bits: &mut Bits<'_>, out: &mut Vec<u8>) -> Result<(), ArtifactError> {
    bits.buf = 0;
    bits.count = 0;
    let len = u16_at(bits.data, bits.pos).ok_or(ArtifactError::Corrupt("a short stored block"))?;
    let start = bits.pos + 4;
    let chunk = bits
        .data
        .get(start..start + usize::from(len))
        .ok_or(ArtifactError::Corrupt("a short stored block"))?;
    out.extend_from_slice(chunk);
    bits.pos = start + usize::from(len);
    Ok(())
}

fn dynamic_codes(bits: &mut Bits<'_>) -> Result<(Huffman, Huffman), ArtifactError> {
    const ORDER: [usize; 19] = [
        16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
    ];
    let nlen = bits.take(5)? as usize + 257;
    let ndist = bits.take(5)? as usize + 1;
    let ncode = bits.take(4)? as usize + 4;
    let mut code_lengths = [0u8; 19];
    for &i in &ORDER[..ncode] {
        code_lengths[i] = bits.take(3)? as u8;
    }
    let lencode = Huffman::new(&code_lengths);
    let mut lengths = Vec::with_capacity(nlen + ndist);
    while lengths.len() < nlen + ndist {
        let (value, repeat) = match lencode.decode(bits)? {
            sym @ 0..=15 => (sym as u8, 1),
            16 => (
                *lengths
                    .last()
                    .ok_or(ArtifactError::Corrupt("a repeat with nothing before"))?,
                3 + bits.take(2)?,
            ),
            17 => (0, 3 + bits.take(3)?),
            _ => (0, 11 + bits.take(7)?),
        };
        lengths.extend(std::iter::repeat_n(value, repeat as usize));
    }
    if lengths.len() > nlen + ndist {
        return Err(ArtifactError::Corrupt("too many code lengths"));
    }
    Ok((
        Huffman::new(&lengths[..nlen]),
        Huffman::new(&lengths[nlen..]),
    ))
}

fn block(
    bits: &mut Bits<'_>,
    out: &mut Vec<u8>,
    (lit, dist): &(Huffman, Huffman),
    want: usize,
) -> Result<(), ArtifactError> {
    while out.len() < want {
        let sym = usize::from(lit.decode(bits)?);
        if sym < 256 {
            out.push(sym as u8);
            continue;
        }
        if sym == 256 {
            return Ok(());
        }
        let i = sym - 257;
        let (Some(&base), Some(&extra)) = (LEN_BASE.get(i), LEN_EXTRA.get(i)) else {
            return Err(ArtifactError::Corrupt("a bad length code"));
        };
        let len = usize::from(base) + bits.take(u32::from(extra))? as usize;
        let d = usize::from(dist.decode(bits)?);
        let (Some(&dbase), Some(&dextra)) = (DIST_BASE.get(d), DIST_EXTRA.get(d)) else {
            return Err(ArtifactError::Corrupt("a bad distance code"));
        };
        let back = usize::from(dbase) + bits.take(u32::from(dextra))? as usize;
        if back > out.len() {
            return Err(ArtifactError::Corrupt("a distance before the start"));
        }
        for _ in 0..len {
            out.push(out[out.len() - back]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 64-bit little-endian ELF header's first 20 bytes for `machine`.
    pub(crate) fn elf(machine: u16) -> Vec<u8> {
        let mut h = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0".to_vec();
        h.extend_from_slice(&machine.to_le_bytes());
        h.extend_from_slice(b"rest of the binary, rest of the binary");
        h
    }

    /// A zip with one stored entry.
    pub(crate) fn zip(name: &str, data: &[u8], mode: u32) -> Vec<u8> {
        let mut z = Vec::new();
        let n = name.len() as u16;
        z.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        z.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        z.extend_from_slice(&(data.len() as u32).to_le_bytes());
        z.extend_from_slice(&(data.len() as u32).to_le_bytes());
        z.extend_from_slice(&n.to_le_bytes());
        z.extend_from_slice(&0u16.to_le_bytes());
        z.extend_from_slice(name.as_bytes());
        z.extend_from_slice(data);
        let cd = z.len() as u32;
        z.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        z.extend_from_slice(&[20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        z.extend_from_slice(&(data.len() as u32).to_le_bytes());
        z.extend_from_slice(&(data.len() as u32).to_le_bytes());
        z.extend_from_slice(&n.to_le_bytes());
        z.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        z.extend_from_slice(&(mode << 16).to_le_bytes());
        z.extend_from_slice(&0u32.to_le_bytes());
        z.extend_from_slice(name.as_bytes());
        let cd_len = z.len() as u32 - cd;
        z.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        z.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
        z.extend_from_slice(&cd_len.to_le_bytes());
        z.extend_from_slice(&cd.to_le_bytes());
        z.extend_from_slice(&[0, 0]);
        z
    }

    #[test]
    fn an_aarch64_bootstrap_passes() {
        assert_eq!(
            check_bootstrap(&zip("bootstrap", &elf(0xB7), 0o100755)),
            Ok(())
        );
    }

    #[test]
    fn every_wrong_artifact_is_named() {
        assert_eq!(
            check_bootstrap(&zip("bootstrap", &elf(0x3E), 0o100755)),
            Err(ArtifactError::WrongArch {
                machine: 0x3E,
                class: 64
            })
        );
        assert_eq!(
            check_bootstrap(&zip("main", &elf(0xB7), 0o100755)),
            Err(ArtifactError::NoBootstrap)
        );
        assert_eq!(
            check_bootstrap(&zip("bootstrap", b"#!/bin/sh\necho hello world", 0o100755)),
            Err(ArtifactError::NotElf)
        );
        assert_eq!(
            check_bootstrap(&zip("bootstrap", &elf(0xB7), 0o100644)),
            Err(ArtifactError::NotExecutable(0o644))
        );
        assert!(matches!(
            check_bootstrap(b"not a zip at all, just text"),
            Err(ArtifactError::NotAZip(_))
        ));
        let mut e32 = elf(0xB7);
        e32[4] = 1;
        assert!(matches!(
            check_elf(&e32),
            Err(ArtifactError::WrongArch { class: 32, .. })
        ));
    }

    #[test]
    fn deflated_entries_are_inflated() {
        // zlib.compressobj(9, zlib.DEFLATED, -15) of elf(0xB7) + 200 bytes of "ab"
        // repeated: a fixed-Huffman block with back-references.
        let mut plain = elf(0xB7);
        plain.extend(b"ab".repeat(100));
        let deflated = fixed_huffman(&plain);
        assert_eq!(inflate_prefix(&deflated, plain.len()).unwrap(), plain);
        assert_eq!(inflate_prefix(&deflated, 20).unwrap(), plain[..20]);
        // A stored block.
        let mut stored = vec![0x01];
        stored.extend_from_slice(&(plain.len() as u16).to_le_bytes());
        stored.extend_from_slice(&(!(plain.len() as u16)).to_le_bytes());
        stored.extend_from_slice(&plain);
        assert_eq!(inflate_prefix(&stored, 20).unwrap(), plain[..20]);
        assert!(inflate_prefix(&[0x07], 20).is_err());
    }

    /// A minimal fixed-Huffman encoder (literals only) for the tests.
    fn fixed_huffman(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut acc, mut n) = (0u32, 0u32);
        let mut put = |value: u32, len: u32, out: &mut Vec<u8>| {
            acc |= value << n;
            n += len;
            while n >= 8 {
                out.push(acc as u8);
                acc >>= 8;
                n -= 8;
            }
        };
        let rev =
            |code: u32, len: u32| (0..len).fold(0, |r, i| r | ((code >> i) & 1) << (len - 1 - i));
        put(1, 1, &mut out);
        put(1, 2, &mut out);
        for &b in data {
            let (code, len) = if b < 144 {
                (0x30 + u32::from(b), 8)
            } else {
                (0x190 + u32::from(b) - 144, 9)
            };
            put(rev(code, len), len, &mut out);
        }
        put(0, 7, &mut out);
        put(0, 7, &mut out);
        out
    }
}

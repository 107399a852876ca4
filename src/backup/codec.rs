//! Streaming codec layers: SHA-256 of the plaintext, gzip, and AES-256-GCM in
//! the STREAM construction, plus key derivation.
//!
//! Write side: `records → Hashing → gzip? → Encrypt? → file`.
//! Read side: `file → Decrypt? → gunzip? → Hashing → records`.
//!
//! ## STREAM (Hoang, Reyhanitabar, Rogaway, Vizár 2015)
//!
//! The compressed payload is cut into segments of [`SEGMENT_SIZE`] plaintext
//! bytes; each is sealed with AES-256-GCM under the 12-byte nonce
//! `prefix(7 random bytes per file) ‖ counter(u32 BE) ‖ last(0x00 | 0x01)`, the
//! same layout as the `aead` crate's `StreamBE32`. Every non-final segment is
//! exactly `SEGMENT_SIZE + 16` bytes on disk; the final one (flag `0x01`) holds
//! 0..=`SEGMENT_SIZE` bytes and takes `sha256(manifest)` as associated data, so
//! reordering, dropping or truncating segments, or editing the manifest, fails
//! authentication. A key-check tag (GCM tag of the empty message under nonce
//! `prefix ‖ 0xFFFFFFFF ‖ 0x02`, a flag STREAM never uses) tells "wrong key"
//! apart from "corrupted data" before any segment is opened.

use std::io::{self, BufRead, Read, Write};

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use zeroize::{Zeroize, Zeroizing};

use super::fault::Fault;
use crate::error::BackupErrorKind;

/// A 32-byte backup key (from a key file, or derived from a passphrase) or
/// a key derived from one (the MAC key): wiped from memory when dropped.
/// Copies are made with `clone`, each wiped in turn.
pub(crate) type SecretKey = Zeroizing<[u8; 32]>;

/// Plaintext bytes per encrypted segment.
pub(crate) const SEGMENT_SIZE: usize = 64 * 1024;
/// AES-GCM tag length.
pub(crate) const TAG_LEN: usize = 16;
/// Random nonce prefix length (12-byte nonce minus counter and flag).
pub(crate) const NONCE_PREFIX_LEN: usize = 7;
/// Algorithm name recorded in the manifest.
pub(crate) const ENCRYPTION_ALGORITHM: &str = "AES-256-GCM/STREAM-BE32";

const KEY_CHECK_AAD: &[u8] = b"doctype-migrate backup key check v1";

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Fills `buf` from the operating system's random source.
pub(crate) fn random_bytes(buf: &mut [u8]) -> Result<(), Fault> {
    getrandom::fill(buf).map_err(|e| {
        Fault::new(
            BackupErrorKind::Other,
            format!("cannot get random bytes from the OS: {e}"),
        )
    })
}

// ---------------------------------------------------------------- hashing

/// Passes bytes through while hashing and counting them.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Returns the inner writer, the SHA-256 and the byte count.
    pub(crate) fn finish(self) -> (W, [u8; 32], u64) {
        (self.inner, self.hasher.finalize().into(), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes and counts the bytes read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }
    /// The SHA-256 and count of everything read so far.
    pub(crate) fn digest(&self) -> ([u8; 32], u64) {
        (self.hasher.clone().finalize().into(), self.bytes)
    }
    pub(crate) fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Counts bytes written (the payload length on disk).
pub(crate) struct CountingWriter<W> {
    pub(crate) inner: W,
    pub(crate) bytes: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

// ---------------------------------------------------------------- gzip

/// Optional gzip layer on the write side.
pub(crate) enum MaybeGzip<W: Write> {
    Gzip(Box<GzEncoder<W>>),
    Plain(W),
}

impl<W: Write> MaybeGzip<W> {
    pub(crate) fn new(inner: W, level: Option<u32>) -> Self {
        match level {
            Some(l) => MaybeGzip::Gzip(Box::new(GzEncoder::new(inner, Compression::new(l)))),
            None => MaybeGzip::Plain(inner),
        }
    }
    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            MaybeGzip::Gzip(g) => g.finish(),
            MaybeGzip::Plain(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for MaybeGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            MaybeGzip::Gzip(g) => g.write(buf),
            MaybeGzip::Plain(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            MaybeGzip::Gzip(g) => g.flush(),
            MaybeGzip::Plain(w) => w.flush(),
        }
    }
}

/// Optional gunzip layer on the read side. Uses the `bufread` decoder so the
/// bytes after the gzip member stay in the inner reader and can be checked.
pub(crate) enum MaybeGunzip<R: BufRead> {
    Gzip(Box<flate2::bufread::GzDecoder<R>>),
    Plain(R),
}

impl<R: BufRead> MaybeGunzip<R> {
    pub(crate) fn new(inner: R, gzip: bool) -> Self {
        if gzip {
            MaybeGunzip::Gzip(Box::new(flate2::bufread::GzDecoder::new(inner)))
        } else {
            MaybeGunzip::Plain(inner)
        }
    }
    /// The compressed-side reader.
    pub(crate) fn inner_mut(&mut self) -> &mut R {
        match self {
            MaybeGunzip::Gzip(g) => g.get_mut(),
            MaybeGunzip::Plain(r) => r,
        }
    }
}

impl<R: BufRead> Read for MaybeGunzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            MaybeGunzip::Gzip(g) => g.read(buf),
            MaybeGunzip::Plain(r) => r.read(buf),
        }
    }
}

// ---------------------------------------------------------------- STREAM

fn nonce(
    prefix: &[u8; NONCE_PREFIX_LEN],
    counter: u32,
    flag: u8,
) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut n = [0u8; 12];
    n[..NONCE_PREFIX_LEN].copy_from_slice(prefix);
    n[NONCE_PREFIX_LEN..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = flag;
    Nonce::from(n)
}

/// Builds the cipher for a 32-byte key.
pub(crate) fn cipher(key: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(&(*key).into())
}

/// The key-check tag stored in the manifest (see the module docs).
pub(crate) fn key_check(cipher: &Aes256Gcm, prefix: &[u8; NONCE_PREFIX_LEN]) -> [u8; TAG_LEN] {
    let mut empty: [u8; 0] = [];
    match cipher.encrypt_inout_detached(
        &nonce(prefix, u32::MAX, 2),
        KEY_CHECK_AAD,
        (&mut empty[..]).into(),
    ) {
        Ok(tag) => tag.into(),
        // Encrypting an empty message cannot exceed GCM's length limits.
        Err(_) => [0; TAG_LEN],
    }
}

/// Seals plaintext into STREAM segments.
pub(crate) struct EncryptWriter<W: Write> {
    inner: W,
    cipher: Aes256Gcm,
    prefix: [u8; NONCE_PREFIX_LEN],
    counter: u32,
    buf: Vec<u8>,
}

impl<W: Write> EncryptWriter<W> {
    pub(crate) fn new(inner: W, cipher: Aes256Gcm, prefix: [u8; NONCE_PREFIX_LEN]) -> Self {
        EncryptWriter {
            inner,
            cipher,
            prefix,
            counter: 0,
            buf: Vec::with_capacity(SEGMENT_SIZE + TAG_LEN),
        }
    }

    fn seal(&mut self, last: bool, aad: &[u8]) -> io::Result<()> {
        let tag = self
            .cipher
            .encrypt_inout_detached(
                &nonce(&self.prefix, self.counter, u8::from(last)),
                aad,
                self.buf.as_mut_slice().into(),
            )
            .map_err(|_| io::Error::other("AES-GCM encryption failed"))?;
        self.inner.write_all(&self.buf)?;
        self.inner.write_all(&tag)?;
        self.buf.clear();
        if !last {
            self.counter = self
                .counter
                .checked_add(1)
                .filter(|c| *c != u32::MAX)
                .ok_or_else(|| {
                    io::Error::other("backup too large: STREAM segment counter exhausted")
                })?;
        }
        Ok(())
    }

    /// Seals the final segment with `aad` as associated data.
    pub(crate) fn finish(mut self, aad: &[u8]) -> io::Result<W> {
        self.seal(true, aad)?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for EncryptWriter<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let total = data.len();
        while !data.is_empty() {
            if self.buf.len() == SEGMENT_SIZE {
                // More data follows, so this full segment is not the last.
                self.seal(false, &[])?;
            }
            let take = (SEGMENT_SIZE - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(total)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Optional encryption layer on the write side.
pub(crate) enum MaybeEncrypt<W: Write> {
    Encrypt(Box<EncryptWriter<W>>),
    Plain(W),
}

impl<W: Write> MaybeEncrypt<W> {
    pub(crate) fn finish(self, aad: &[u8]) -> io::Result<W> {
        match self {
            MaybeEncrypt::Encrypt(e) => e.finish(aad),
            MaybeEncrypt::Plain(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for MaybeEncrypt<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            MaybeEncrypt::Encrypt(e) => e.write(buf),
            MaybeEncrypt::Plain(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            MaybeEncrypt::Encrypt(e) => e.flush(),
            MaybeEncrypt::Plain(w) => w.flush(),
        }
    }
}

/// Opens STREAM segments. `remaining` is the exact ciphertext length (from
/// the header, already checked against the file size), which tells which
/// segment must be the final one.
pub(crate) struct DecryptReader<R: Read> {
    inner: R,
    cipher: Aes256Gcm,
    prefix: [u8; NONCE_PREFIX_LEN],
    counter: u32,
    remaining: u64,
    last_aad: [u8; 32],
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl<R: Read> DecryptReader<R> {
    pub(crate) fn new(
        inner: R,
        cipher: Aes256Gcm,
        prefix: [u8; NONCE_PREFIX_LEN],
        ciphertext_len: u64,
        last_aad: [u8; 32],
    ) -> Self {
        DecryptReader {
            inner,
            cipher,
            prefix,
            counter: 0,
            remaining: ciphertext_len,
            last_aad,
            buf: Vec::with_capacity(SEGMENT_SIZE + TAG_LEN),
            pos: 0,
            done: false,
        }
    }

    fn next_segment(&mut self) -> io::Result<()> {
        let full = (SEGMENT_SIZE + TAG_LEN) as u64;
        let last = self.remaining <= full;
        let len = self.remaining.min(full) as usize;
        if len < TAG_LEN {
            return Err(Fault::new(
                BackupErrorKind::Truncated,
                format!(
                    "truncated: segment {} is {len} bytes, shorter than its tag",
                    self.counter
                ),
            )
            .into_io(io::ErrorKind::InvalidData));
        }
        self.buf.resize(len, 0);
        self.inner.read_exact(&mut self.buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                Fault::new(
                    BackupErrorKind::Truncated,
                    "truncated: payload ends inside a segment",
                )
                .into_io(io::ErrorKind::UnexpectedEof)
            } else {
                e
            }
        })?;
        self.remaining -= len as u64;
        let split = len - TAG_LEN;
        let tag = Tag::try_from(&self.buf[split..]).map_err(|_| invalid("bad tag length"))?;
        let aad: &[u8] = if last { &self.last_aad } else { &[] };
        let (msg, _) = self.buf.split_at_mut(split);
        self.cipher
            .decrypt_inout_detached(
                &nonce(&self.prefix, self.counter, u8::from(last)),
                aad,
                msg.into(),
                &tag,
            )
            .map_err(|_| {
                // The key check passed before any segment is opened, so the
                // key is right: the data was altered (or cut at a segment
                // boundary and reframed).
                Fault::new(
                    BackupErrorKind::Corrupted,
                    format!(
                        "wrong key or corrupted data: segment {}{} failed authentication",
                        self.counter,
                        if last { " (final)" } else { "" }
                    ),
                )
                .into_io(io::ErrorKind::InvalidData)
            })?;
        self.buf.truncate(split);
        self.pos = 0;
        if last {
            self.done = true;
        } else {
            self.counter = self
                .counter
                .checked_add(1)
                .ok_or_else(|| invalid("segment counter overflow"))?;
        }
        Ok(())
    }
}

impl<R: Read> Read for DecryptReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            self.next_segment()?;
        }
        let n = (self.buf.len() - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Optional decryption layer on the read side.
pub(crate) enum MaybeDecrypt<R: Read> {
    Decrypt(Box<DecryptReader<R>>),
    Plain(R),
}

impl<R: Read> Read for MaybeDecrypt<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            MaybeDecrypt::Decrypt(d) => d.read(buf),
            MaybeDecrypt::Plain(r) => r.read(buf),
        }
    }
}

// ---------------------------------------------------------------- MAC

/// Length of the MAC trailer of an authenticated backup.
pub(crate) const MAC_LEN: usize = 32;

/// HKDF `info` for the MAC key (see [`mac_key`]).
const MAC_KEY_INFO: &[u8] = b"doctype-migrate backup MAC key v1";
/// Domain separation prefix of the MAC input.
const MAC_DOMAIN: &[u8] = b"doctype-migrate backup MAC v1\0";

/// HMAC-SHA256 (RFC 2104) of the concatenation of `parts`, built on the
/// `sha2` crate already used for every hash here. Checked against the
/// RFC 4231 test vectors below.
///
/// The padded key and the two pads are wiped on return. The SHA-256 states
/// that absorbed them are not: `sha2` 0.10 offers no way to wipe a hasher.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = Zeroizing::new([0u8; BLOCK]);
    if key.len() > BLOCK {
        let mut digest: [u8; 32] = Sha256::digest(key).into();
        k[..32].copy_from_slice(&digest);
        digest.zeroize();
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut ipad = Zeroizing::new([0x36u8; BLOCK]);
    let mut opad = Zeroizing::new([0x5cu8; BLOCK]);
    for i in 0..BLOCK {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let mut inner = Sha256::new();
    inner.update(&ipad[..]);
    for p in parts {
        inner.update(p);
    }
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(&opad[..]);
    outer.update(inner);
    outer.finalize().into()
}

/// The MAC key for a backup key: HKDF-SHA256-Expand (RFC 5869) with the
/// backup key as the pseudorandom key (it already is one: 32 bytes from a
/// key file or from argon2id) and a fixed `info`, one output block. The
/// AES-GCM key and the MAC key are thus independent (domain separation).
pub(crate) fn mac_key(key: &[u8; 32]) -> SecretKey {
    Zeroizing::new(hmac_sha256(key, &[MAC_KEY_INFO, &[1u8]]))
}

/// The MAC of a backup: HMAC-SHA256 under [`mac_key`] over a domain tag,
/// the 64 header bytes (lengths, flags and the SHA-256 of header and
/// manifest) and the manifest bytes (which hold the payload's SHA-256).
pub(crate) fn backup_mac(mac_key: &[u8; 32], header: &[u8], manifest: &[u8]) -> [u8; MAC_LEN] {
    hmac_sha256(mac_key, &[MAC_DOMAIN, header, manifest])
}

/// Constant-time equality of two MACs.
pub(crate) fn mac_eq(a: &[u8; MAC_LEN], b: &[u8; MAC_LEN]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------- KDF

/// Argon2id parameters and salt, as stored in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct KdfParams {
    /// Always `argon2id`.
    pub algorithm: String,
    /// Argon2 version (19 = 0x13).
    pub version: u32,
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
    /// 16-byte salt, hex.
    pub salt: String,
}

/// Upper bounds applied to KDF parameters read from a file, so a crafted
/// manifest cannot make the reader allocate gigabytes or spin for hours.
pub(crate) const MAX_M_COST_KIB: u32 = 1 << 20;
pub(crate) const MAX_T_COST: u32 = 64;
pub(crate) const MAX_P_COST: u32 = 16;

/// Derives a 32-byte key from a passphrase with argon2id.
pub(crate) fn derive_key(passphrase: &[u8], p: &KdfParams) -> Result<SecretKey, Fault> {
    if p.algorithm != "argon2id" || p.version != 0x13 {
        return Err(Fault::new(
            BackupErrorKind::Unsupported,
            format!("unsupported KDF {} version {}", p.algorithm, p.version),
        ));
    }
    if p.m_cost_kib > MAX_M_COST_KIB || p.t_cost > MAX_T_COST || p.p_cost > MAX_P_COST {
        return Err(Fault::new(
            BackupErrorKind::Unsupported,
            format!(
                "KDF parameters out of bounds (m={} KiB, t={}, p={}; at most {MAX_M_COST_KIB}, {MAX_T_COST}, {MAX_P_COST})",
                p.m_cost_kib, p.t_cost, p.p_cost
            ),
        ));
    }
    let salt = super::format::hex_decode(&p.salt)
        .ok_or_else(|| Fault::new(BackupErrorKind::Corrupted, "KDF salt is not hex"))?;
    // The writer's salts are 16 bytes; a shorter one than argon2 takes is
    // a damaged or forged manifest, not a failure of argon2.
    if salt.len() < argon2::MIN_SALT_LEN {
        return Err(Fault::new(
            BackupErrorKind::Corrupted,
            format!(
                "manifest is not valid: KDF salt of {} bytes (at least {})",
                salt.len(),
                argon2::MIN_SALT_LEN
            ),
        ));
    }
    let params = argon2::Params::new(p.m_cost_kib, p.t_cost, p.p_cost, Some(32)).map_err(|e| {
        Fault::new(
            BackupErrorKind::Corrupted,
            format!("invalid argon2 parameters: {e}"),
        )
    })?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase, &salt, &mut key[..])
        .map_err(|e| Fault::new(BackupErrorKind::Other, format!("argon2id failed: {e}")))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(len: usize) {
        let key = [7u8; 32];
        let prefix = [1u8; NONCE_PREFIX_LEN];
        let data: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
        let mut w = EncryptWriter::new(Vec::new(), cipher(&key), prefix);
        w.write_all(&data).unwrap();
        let ct = w.finish(&[9; 32]).unwrap();
        let n_segments = len.div_ceil(SEGMENT_SIZE).max(1);
        assert_eq!(ct.len(), len + n_segments * TAG_LEN, "len {len}");
        let mut r = DecryptReader::new(&ct[..], cipher(&key), prefix, ct.len() as u64, [9; 32]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        // Dropping the final segment at a boundary must fail.
        if ct.len() > SEGMENT_SIZE + TAG_LEN {
            let cut = SEGMENT_SIZE + TAG_LEN;
            let mut r = DecryptReader::new(&ct[..cut], cipher(&key), prefix, cut as u64, [9; 32]);
            assert!(r.read_to_end(&mut Vec::new()).is_err());
        }
        // Wrong final AAD must fail.
        let mut r = DecryptReader::new(&ct[..], cipher(&key), prefix, ct.len() as u64, [8; 32]);
        assert!(r.read_to_end(&mut Vec::new()).is_err());
    }

    fn unhex(s: &str) -> Vec<u8> {
        super::super::format::hex_decode(s).unwrap()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 1.
        assert_eq!(
            hmac_sha256(&[0x0b; 20], &[b"Hi There"]).to_vec(),
            unhex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        );
        // Test case 2, message split in parts.
        assert_eq!(
            hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]).to_vec(),
            unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
        // Test case 6: a key longer than the block size.
        assert_eq!(
            hmac_sha256(
                &[0xaa; 131],
                &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
            )
            .to_vec(),
            unhex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        );
    }

    #[test]
    fn mac_key_is_separate_and_macs_compare() {
        let k = [3u8; 32];
        assert_ne!(*mac_key(&k), k);
        let a = backup_mac(&mac_key(&k), b"h", b"m");
        let mut b = a;
        assert!(mac_eq(&a, &b));
        b[31] ^= 1;
        assert!(!mac_eq(&a, &b));
        assert_ne!(a, backup_mac(&mac_key(&[4u8; 32]), b"h", b"m"));
    }

    /// Found by `backup_fuzz`: a manifest whose salt argon2
    /// refuses was reported as `Other` ("argon2id failed"), not as the
    /// invalid manifest it is.
    #[test]
    fn a_kdf_salt_too_short_is_a_corrupted_manifest() {
        let params = |salt: &str| KdfParams {
            algorithm: "argon2id".into(),
            version: 0x13,
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
            salt: salt.into(),
        };
        for salt in ["", "00", &"00".repeat(7)] {
            let f = derive_key(b"pw", &params(salt)).unwrap_err();
            assert_eq!(f.kind, BackupErrorKind::Corrupted, "{salt:?}: {f}");
        }
        derive_key(b"pw", &params(&"00".repeat(8))).unwrap();
    }

    #[test]
    fn stream_round_trips_at_boundaries() {
        for len in [
            0,
            1,
            SEGMENT_SIZE - 1,
            SEGMENT_SIZE,
            SEGMENT_SIZE + 1,
            2 * SEGMENT_SIZE,
            3 * SEGMENT_SIZE + 5,
        ] {
            roundtrip(len);
        }
    }
}

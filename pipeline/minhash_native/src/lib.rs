//! MinHash signatures of word shingles, one text at a time, for `pipeline/minhash.py`.
//!
//! The NumPy code in `minhash.py` is the specification and the fallback; this computes the same
//! bytes. NumPy has to vectorise the word hashes over a whole batch through prefix sums of
//! `c * P^-i` and their power tables; one pass over a text's characters with Horner's rule gives the
//! same polynomial hash mod 2**64 (`sum c_i * P^(end - i)`) without them, and without the batch's
//! intermediate arrays. Python lower-cases the texts first, so case mapping is Python's own.
//!
//! `WordKey`, `spaced_lines`, `count_words`, `lines_to_check` and `SubstringSet` serve the
//! cleaner's hot path (`clean.content_hash`, the other identity of a story's words,
//! `clean.normalize_text` and the furniture checks); the Python beside each in `clean.py` is its
//! specification.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use aho_corasick::{AhoCorasick, MatchKind};
use memchr::memmem;
use pyo3::buffer::PyBuffer;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBytes, PyString};

const SHINGLE: usize = 5;
const BINS: usize = 128;
/// Bytes of a signature: a little-endian u16 per bin, then the distinct shingles as a u32.
const SIGNATURE: usize = 2 * BINS + 4;
const PROBES: usize = 32;
const TABLE: u32 = 0x3000;
const P: u64 = 0x100000001B3;
const MULT: [u64; SHINGLE] = [
    0x9E3779B97F4A7C15,
    0xC2B2AE3D27D4EB4F,
    0x165667B19E3779F9,
    0xD6E8FEB86659FD93,
    0xFF51AFD7ED558CCD,
];
const NO_HASH: u64 = u64::MAX;

/// MurmurHash3's 64-bit finaliser.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51AFD7ED558CCD);
    x ^= x >> 33;
    x = x.wrapping_mul(0xC4CEB9FE1A85EC53);
    x ^ (x >> 33)
}

/// The quotation marks that open quoted speech, in `minhash._QUOTED`'s order.
const OPENERS: [char; 5] = ['"', '\u{201c}', '\u{ab}', '\u{201e}', '\u{2018}'];

/// The text with each quotation replaced by a space, or None when it has none: what
/// `minhash.unquoted` (a regular expression, the specification) gives. Scanning from the left, an
/// opening mark starts a quotation that ends at the first closing mark after it: `"` … `"`,
/// `“` … `”`, `«` … `»`, `„` … `“` or `”`, and `‘` … `’` with 20 characters or more between and no
/// line break. An opening mark with no closing mark after it stays, as do the characters after it.
fn unquoted(text: &str) -> Option<String> {
    if !text.contains(OPENERS) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    // Once no closing mark of a kind follows some point, none follows any later point either.
    let mut exhausted = [false; 4];
    let mut changed = false;
    let mut at = 0;
    while let Some(c) = text[at..].chars().next() {
        let after = at + c.len_utf8();
        let rest = &text[after..];
        let close = match c {
            '"' | '\u{201c}' | '\u{ab}' | '\u{201e}' => {
                let kind = OPENERS.iter().position(|&o| o == c).expect("an opener");
                let found = if exhausted[kind] {
                    None
                } else {
                    match c {
                        '"' => rest.find('"'),
                        '\u{201c}' => rest.find('\u{201d}'),
                        '\u{ab}' => rest.find('\u{bb}'),
                        _ => rest.find(['\u{201c}', '\u{201d}']),
                    }
                };
                exhausted[kind] |= found.is_none();
                found.map(|end| after + end + rest[end..].chars().next().map_or(0, char::len_utf8))
            }
            '\u{2018}' => rest.find(['\u{2019}', '\n']).and_then(|end| {
                let closed = rest[end..].starts_with('\u{2019}') && rest[..end].chars().count() >= 20;
                closed.then(|| after + end + '\u{2019}'.len_utf8())
            }),
            _ => None,
        };
        match close {
            Some(end) => {
                out.push(' ');
                changed = true;
                at = end;
            }
            None => {
                out.push(c);
                at = after;
            }
        }
    }
    changed.then_some(out)
}

#[pyclass(frozen)]
struct Signer {
    /// 1 where a code point is part of a word (Python's `isalnum`), for code points below TABLE;
    /// entry TABLE stands for every code point above it.
    word: Vec<u8>,
    /// `word` for the bytes of ASCII text (`ascii_words`).
    ascii: [u8; 256],
    /// For each bin, the bins an empty one borrows from, in order.
    probes: Vec<u8>,
}

/// A 0/1 word flag for each byte of ASCII text, from a table of flags by code point, built once
/// per table: the ASCII paths index it by byte, with no bounds check and no branch.
fn ascii_flags(word: &[u8], is_word: impl Fn(u8) -> bool) -> [u8; 256] {
    let mut flags = [0u8; 256];
    for (flag, &entry) in flags.iter_mut().zip(&word[..128]) {
        *flag = is_word(entry) as u8;
    }
    flags
}

impl Signer {
    fn words(&self, text: &str, out: &mut Vec<u64>) {
        if text.is_ascii() {
            return self.ascii_words(text.as_bytes(), out);
        }
        let mut hash: u64 = 0;
        let mut inside = false;
        for c in text.chars() {
            let code = c as u32;
            if self.word[code.min(TABLE) as usize] != 0 {
                hash = hash.wrapping_add(code as u64).wrapping_mul(P);
                inside = true;
            } else if inside {
                out.push(hash);
                hash = 0;
                inside = false;
            }
        }
        if inside {
            out.push(hash);
        }
    }

    /// `words` for ASCII text, lower-cased as it is read, without a branch on the text (as
    /// `WordKey::ascii_key`): each byte
    /// steps the hash, which a byte outside a word zeroes, and the hash is written where the
    /// output has got to, kept only where a word ends.
    fn ascii_words(&self, bytes: &[u8], out: &mut Vec<u64>) {
        out.clear();
        out.resize(bytes.len() / 2 + 1, 0); // a word and a gap at least for each word but the last
        let mut len = 0usize;
        let mut hash: u64 = 0;
        let mut inside = 0u64;
        for &byte in bytes {
            let word = self.ascii[byte as usize] as u64;
            out[len] = hash;
            len += (inside & (1 - word)) as usize;
            // Folded here, as Python's lower() folds ASCII: the caller need not copy the text lowered.
            let folded = byte.to_ascii_lowercase() as u64;
            hash = hash.wrapping_add(folded).wrapping_mul(P) & 0u64.wrapping_sub(word);
            inside = word;
        }
        out.truncate(len);
        if inside == 1 {
            out.push(hash);
        }
    }

    /// The signature of the text without its quoted speech (`unquoted`), or of the whole text when
    /// that leaves no words (a text that is all quotation).
    fn sign(&self, text: &str, words: &mut Vec<u64>, hashes: &mut Vec<u64>) -> Option<[u8; SIGNATURE]> {
        if let Some(plain) = unquoted(text) {
            if let Some(signed) = self.sign_words(&plain, words, hashes) {
                return Some(signed);
            }
        }
        self.sign_words(text, words, hashes)
    }

    fn sign_words(&self, text: &str, words: &mut Vec<u64>, hashes: &mut Vec<u64>) -> Option<[u8; SIGNATURE]> {
        words.clear();
        hashes.clear();
        self.words(text, words);
        if words.is_empty() {
            return None;
        }
        let mut minima = [NO_HASH; BINS];
        let mut add = |shingle: u64| {
            let hash = mix(shingle);
            hashes.push(hash);
            let bin = (hash >> 57) as usize;
            if hash < minima[bin] {
                minima[bin] = hash;
            }
        };
        if words.len() >= SHINGLE {
            for window in words.windows(SHINGLE) {
                add(window
                    .iter()
                    .zip(MULT)
                    .fold(0u64, |s, (w, m)| s.wrapping_add(w.wrapping_mul(m))));
            }
        } else {
            // A text shorter than one shingle is one shingle of all its words.
            add(words
                .iter()
                .zip(MULT)
                .fold(0u64, |s, (w, m)| s.wrapping_add(w.wrapping_mul(m))));
        }
        let filled: Vec<bool> = minima.iter().map(|&m| m != NO_HASH).collect();
        let values: Vec<u16> = minima.iter().map(|&m| (m & 0xFFFF) as u16).collect();
        // The distinct shingles (by their 64-bit hash) follow the bins: the size that containment
        // over the shorter copy needs beside the Jaccard similarity the bins estimate.
        hashes.sort_unstable();
        hashes.dedup();
        let mut out = [0u8; SIGNATURE];
        out[2 * BINS..].copy_from_slice(&(hashes.len().min(u32::MAX as usize) as u32).to_le_bytes());
        for bin in 0..BINS {
            let from = if filled[bin] {
                Some(bin)
            } else {
                // Optimal densification: the first filled bin of this bin's probe sequence, or
                // (rare: a text of a few shingles) the next filled bin cyclically.
                self.probes[bin * PROBES..(bin + 1) * PROBES]
                    .iter()
                    .map(|&p| p as usize)
                    .find(|&p| filled[p])
                    .or_else(|| (0..BINS).map(|k| (bin + k) % BINS).find(|&b| filled[b]))
            };
            let value = from.map_or(values[bin], |b| values[b]);
            out[2 * bin..2 * bin + 2].copy_from_slice(&value.to_le_bytes());
        }
        Some(out)
    }
}

#[pymethods]
impl Signer {
    #[new]
    fn new(word: &[u8], probes: &[u8]) -> PyResult<Self> {
        if word.len() != TABLE as usize + 1 || probes.len() != BINS * PROBES {
            return Err(PyValueError::new_err(
                "a word flag per code point up to 0x3000 and 32 probes per bin",
            ));
        }
        if probes.iter().any(|&p| p as usize >= BINS) {
            return Err(PyValueError::new_err("probes must name bins"));
        }
        Ok(Signer {
            word: word.to_vec(),
            ascii: ascii_flags(word, |flag| flag != 0),
            probes: probes.to_vec(),
        })
    }

    /// The signature of each lower-cased text (`SIGNATURE` bytes: the bins, then the count of
    /// distinct shingles), or None for a text without words.
    fn sign_all<'py>(&self, py: Python<'py>, texts: Vec<String>) -> Vec<Option<Bound<'py, PyBytes>>> {
        let signed: Vec<Option<[u8; SIGNATURE]>> = py.detach(|| {
            let (mut words, mut hashes) = (Vec::new(), Vec::new());
            texts
                .iter()
                .map(|text| self.sign(text, &mut words, &mut hashes))
                .collect()
        });
        signed
            .into_iter()
            .map(|s| s.map(|bytes| PyBytes::new(py, &bytes)))
            .collect()
    }
}

/// Whether text already has single spaces and lines without spaces at either end (three SIMD scans).
fn already_spaced(bytes: &[u8]) -> bool {
    bytes.first() != Some(&b' ')
        && bytes.last() != Some(&b' ')
        && memmem::find(bytes, b"  ").is_none()
        && memmem::find(bytes, b" \n").is_none()
        && memmem::find(bytes, b"\n ").is_none()
}

/// Text written a byte at a time with each run of spaces made one and every line stripped of
/// spaces (a space is held back until a character follows it on its line).
struct Spacer {
    out: Vec<u8>,
    gap: bool,
    line_start: bool,
}

impl Spacer {
    fn new(capacity: usize) -> Self {
        Spacer {
            out: Vec::with_capacity(capacity),
            gap: false,
            line_start: true,
        }
    }

    fn push(&mut self, byte: u8) {
        match byte {
            b' ' => self.gap = !self.line_start,
            b'\n' => {
                self.gap = false;
                self.line_start = true;
                self.out.push(byte);
            }
            _ => {
                if self.gap {
                    self.out.push(b' ');
                    self.gap = false;
                }
                self.line_start = false;
                self.out.push(byte);
            }
        }
    }

    fn text(self) -> String {
        String::from_utf8(self.out).expect("only ASCII spaces and controls were removed from valid UTF-8")
    }
}

/// The text with each run of spaces made one space and every line stripped of spaces: what
/// `clean.normalize_text` does to spacing, in one pass instead of a scan, a regex and a split.
/// Text already spaced so (most of it) comes back as the same object, after three SIMD scans.
#[pyfunction]
fn spaced_lines<'py>(text: Bound<'py, PyString>) -> PyResult<Bound<'py, PyString>> {
    let py = text.py();
    let spaced = {
        let bytes = text.to_str()?.as_bytes();
        if already_spaced(bytes) {
            return Ok(text);
        }
        let mut spacer = Spacer::new(bytes.len());
        bytes.iter().for_each(|&byte| spacer.push(byte));
        spacer.text()
    };
    Ok(PyString::new(py, &spaced))
}

/// `clean.normalize_text` for ASCII text, in one pass (None for any other text): carriage returns
/// become line ends (a CRLF one), tabs spaces, other control characters go, then runs of spaces
/// become one and every line is stripped of spaces. `clean._normalize_text_spec` is the
/// specification; for ASCII its Unicode steps (NFC, quotes, dashes, wide spaces) change nothing.
#[pyfunction]
fn normalized_ascii<'py>(text: Bound<'py, PyString>) -> PyResult<Option<Bound<'py, PyString>>> {
    let py = text.py();
    let normalized = {
        let bytes = text.to_str()?.as_bytes();
        if !bytes.is_ascii() {
            return Ok(None);
        }
        // A fold without an early exit, so that it compiles to vector code (text is mostly clean).
        let control = bytes
            .iter()
            .fold(false, |seen, &b| seen | (b < 0x20 && b != b'\n') | (b == 0x7F));
        if !control && already_spaced(bytes) {
            return Ok(Some(text));
        }
        let mut spacer = Spacer::new(bytes.len());
        let mut after_cr = false;
        for &raw in bytes {
            let crlf = after_cr && raw == b'\n';
            after_cr = raw == b'\r';
            match raw {
                _ if crlf => {} // CRLF is one line end, made by its CR
                b'\r' => spacer.push(b'\n'),
                b'\t' => spacer.push(b' '),
                b'\n' => spacer.push(b'\n'),
                b if b < 0x20 || b == 0x7F => {}
                b => spacer.push(b),
            }
        }
        spacer.text()
    };
    Ok(Some(PyString::new(py, &normalized)))
}

/// Words of a clean body: its spaces plus its blank-line gaps (non-overlapping), plus one; 0 when
/// empty. `clean._word_count_spec` is the specification.
#[pyfunction]
fn count_words(text: &str) -> usize {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return 0;
    }
    1 + memchr::memchr_iter(b' ', bytes).count() + memmem::find_iter(bytes, b"\n\n").count()
}

/// Whether a line is a paragraph plainly too long to be furniture (`clean._plain_paragraph`, the
/// specification): over ``limit`` characters, and over 45 words, or over 20 when ``banner`` is
/// false and its first character past the ``edges`` is not one of ``copyright_first``.
fn plain_paragraph(line: &str, limit: i64, banner: bool, edges: &[char], copyright_first: &[char]) -> bool {
    let bytes = line.as_bytes();
    // A character is a byte that does not continue a UTF-8 sequence: never more than the bytes.
    if (bytes.len() as i64) <= limit
        || (bytes.iter().filter(|&&b| (b & 0xC0) != 0x80).count() as i64) <= limit
    {
        return false;
    }
    let words = memchr::memchr_iter(b' ', bytes).count() + 1;
    if words > 45 {
        return true;
    }
    if words <= 20 || banner {
        return false;
    }
    match line.chars().find(|c| !edges.contains(c)) {
        Some(first) => !copyright_first.contains(&first),
        None => false,
    }
}

/// The indices of the lines that are not plain paragraphs (`plain_paragraph`): the only ones
/// `clean._drop_furniture` checks one by one.
#[pyfunction]
fn lines_to_check(
    lines: Vec<PyBackedStr>,
    limit: i64,
    banner: bool,
    edges: &str,
    copyright_first: &str,
) -> Vec<usize> {
    let edges: Vec<char> = edges.chars().collect();
    let copyright_first: Vec<char> = copyright_first.chars().collect();
    lines
        .iter()
        .enumerate()
        .filter(|(_, line)| !plain_paragraph(line, limit, banner, &edges, &copyright_first))
        .map(|(i, _)| i)
        .collect()
}

/// A fixed set of substrings, found in one scan of a text (Aho-Corasick with its SIMD prefilter):
/// `clean._banner_words_in` asks which of the banner words a body contains.
#[pyclass(frozen)]
struct SubstringSet {
    words: Vec<String>,
    /// Finds every occurrence, overlapping ones too: a byte at a time.
    finder: AhoCorasick,
    /// Finds whether any word occurs, with the crate's SIMD prefilter (which only leftmost
    /// searches use): most texts contain none of the words, and then the scan ends there.
    any: AhoCorasick,
}

#[pymethods]
impl SubstringSet {
    #[new]
    fn new(words: Vec<String>) -> PyResult<Self> {
        let error = |e: aho_corasick::BuildError| PyValueError::new_err(e.to_string());
        let finder = AhoCorasick::new(&words).map_err(error)?;
        let any = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(&words)
            .map_err(error)?;
        Ok(SubstringSet { words, finder, any })
    }

    /// The words that occur in ``text`` (overlapping occurrences count), each once, in the
    /// order the set was made with.
    fn found_in(&self, text: &str) -> Vec<String> {
        if !self.any.is_match(text) {
            return Vec::new();
        }
        let mut seen = vec![false; self.words.len()];
        for hit in self.finder.find_overlapping_iter(text) {
            seen[hit.pattern().as_usize()] = true;
        }
        self.words
            .iter()
            .zip(seen)
            .filter(|(_, hit)| *hit)
            .map(|(word, _)| word.clone())
            .collect()
    }
}

/// A text's words (runs of word characters, as Python's regex `\w` has them), one space apart:
/// the key `clean._key` compares and hashes.
#[pyclass(frozen)]
struct WordKey {
    /// 1 where a code point is a word character, for every code point the table covers.
    word: Vec<u8>,
    /// `word` for the bytes of ASCII text (`ascii_key`).
    ascii: [u8; 256],
}

impl WordKey {
    /// ASCII text byte by byte, without a branch on the text: a gap between words is every few
    /// bytes, and a branch the CPU mispredicts there (and a capacity check on every push) cost
    /// three times the loop itself. Each byte is written, and kept or overwritten next, where the
    /// output has got to: the output is never longer than the text (a space stands for a gap of
    /// at least one byte), so the buffer is the text's length.
    fn ascii_key(&self, bytes: &[u8]) -> String {
        let mut out = vec![0u8; bytes.len() + 1];
        let mut len = 0usize;
        let mut gap = 0usize; // 1 after a byte outside a word
        let mut started = 0usize; // 1 once a word has been written
        for &byte in bytes {
            let word = self.ascii[byte as usize] as usize;
            let space = word & gap & started;
            // SAFETY: `len` <= the bytes read before this one (each output byte, a space included,
            // stands for at least one input byte), so both writes fall inside `out`.
            unsafe {
                *out.get_unchecked_mut(len) = b' ';
                len += space;
                *out.get_unchecked_mut(len) = byte;
            }
            len += word;
            gap = 1 - word;
            started |= word;
        }
        out.truncate(len);
        String::from_utf8(out).expect("ASCII in, ASCII out")
    }
}

#[pymethods]
impl WordKey {
    #[new]
    fn new(word: &[u8]) -> PyResult<Self> {
        if word.len() < 128 {
            return Err(PyValueError::new_err("the table covers ASCII at least"));
        }
        Ok(WordKey {
            word: word.to_vec(),
            ascii: ascii_flags(word, |flag| flag == 1),
        })
    }

    /// The key of a case-folded text, or None when it holds a code point beyond the table (the
    /// caller's Python decides those).
    fn key(&self, text: &str) -> Option<String> {
        if text.is_ascii() {
            return Some(self.ascii_key(text.as_bytes()));
        }
        let mut out = String::with_capacity(text.len());
        let mut gap = false;
        for c in text.chars() {
            match self.word.get(c as usize) {
                None => return None,
                Some(&1) => {
                    if gap && !out.is_empty() {
                        out.push(' ');
                    }
                    gap = false;
                    out.push(c);
                }
                Some(_) => gap = true,
            }
        }
        Some(out)
    }
}

/// Bands searched after one pass over the matrix gathers their bins.
const BAND_BLOCK: usize = 16;

/// `minhash.band_pairs` (its NumPy `spec_band_pairs` is the specification): ``matrix`` is the
/// (rows x columns) uint16 signature matrix, the bins first, and ``bands`` the pairs of bins each
/// band takes. In each band the texts agreeing on both of its bins form a bucket, and each member
/// is paired with the bucket's first member and with its predecessor there (by text index). The
/// result, the sorted distinct (i, j) pairs, i < j, as native int64 bytes.
///
/// No hashing and no sort: the 16-bit values are already uniform hashes, so each band chains the
/// texts by the value of its first bin (a table of 2**16 latest texts, a link per text) and a text
/// walks its chain back to the latest text that also agrees on the second bin, its predecessor,
/// whose bucket's first member it takes. At 100k texts a chain holds one or two others. The bins
/// of `BAND_BLOCK` bands are gathered in one pass over the matrix into a column each (~13 MB at
/// 200k texts), so that a band reads its bins in order.
#[pyfunction]
fn band_pairs<'py>(
    py: Python<'py>,
    matrix: PyBuffer<u16>,
    rows: usize,
    bands: Vec<(usize, usize)>,
) -> PyResult<Bound<'py, PyBytes>> {
    let columns = if rows == 0 {
        BINS
    } else {
        matrix.item_count() / rows
    };
    if !matrix.is_c_contiguous() || matrix.item_count() != columns * rows || columns < BINS {
        return Err(PyValueError::new_err(
            "matrix must be a contiguous (rows x columns) uint16 matrix of BINS bins or more",
        ));
    }
    if bands.iter().any(|&(a, b)| a >= BINS || b >= BINS) {
        return Err(PyValueError::new_err("bands must name bins"));
    }
    if rows >= u32::MAX as usize {
        return Err(PyValueError::new_err("too many texts"));
    }
    // SAFETY: a contiguous buffer of `item_count` u16, which the exporter keeps alive and unmoved
    // while `matrix` holds it (to the end of this function); nothing writes to it meanwhile.
    let data: &[u16] =
        unsafe { std::slice::from_raw_parts(matrix.buf_ptr() as *const u16, matrix.item_count()) };
    let pairs = py.detach(|| {
        const NONE: u32 = u32::MAX;
        let mut pairs: Vec<(i64, i64)> = Vec::new();
        let mut latest = vec![NONE; 1 << 16];
        let mut link = vec![NONE; rows];
        let mut head = vec![0u32; rows];
        let mut gathered: Vec<u16> = Vec::new();
        for block in bands.chunks(BAND_BLOCK) {
            let mut bins: Vec<usize> = block.iter().flat_map(|&(a, b)| [a, b]).collect();
            bins.sort_unstable();
            bins.dedup();
            let at = |bin: usize| bins.binary_search(&bin).expect("a gathered bin");
            gathered.clear();
            gathered.resize(bins.len() * rows, 0);
            for (i, row) in data.chunks_exact(columns).enumerate() {
                for (k, &bin) in bins.iter().enumerate() {
                    gathered[k * rows + i] = row[bin];
                }
            }
            for &(first_bin, second_bin) in block {
                let (f, s) = (at(first_bin), at(second_bin));
                let first = &gathered[f * rows..(f + 1) * rows];
                let second = &gathered[s * rows..(s + 1) * rows];
                latest.fill(NONE);
                for i in 0..rows {
                    let value = first[i] as usize;
                    let mut j = latest[value];
                    link[i] = j;
                    latest[value] = i as u32;
                    head[i] = i as u32;
                    while j != NONE {
                        if second[j as usize] == second[i] {
                            let bucket_first = head[j as usize];
                            head[i] = bucket_first;
                            pairs.push((bucket_first as i64, i as i64));
                            if bucket_first != j {
                                pairs.push((j as i64, i as i64));
                            }
                            break;
                        }
                        j = link[j as usize];
                    }
                }
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        pairs
    });
    let mut out = Vec::with_capacity(pairs.len() * 16);
    for (i, j) in pairs {
        out.extend_from_slice(&i.to_ne_bytes());
        out.extend_from_slice(&j.to_ne_bytes());
    }
    Ok(PyBytes::new(py, &out))
}

#[pymodule]
fn _minhash_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Signer>()?;
    m.add_class::<WordKey>()?;
    m.add_class::<SubstringSet>()?;
    m.add_function(wrap_pyfunction!(lines_to_check, m)?)?;
    m.add_function(wrap_pyfunction!(normalized_ascii, m)?)?;
    m.add_function(wrap_pyfunction!(spaced_lines, m)?)?;
    m.add_function(wrap_pyfunction!(count_words, m)?)?;
    m.add_function(wrap_pyfunction!(band_pairs, m)?)?;
    Ok(())
}

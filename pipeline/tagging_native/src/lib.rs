//! The topic tagger's hot loop, compiled: finding phrase candidates (a trie walked from word
//! starts), confirming them, scoring topics and building `tag_text`'s dicts, for
//! `pipeline/tagging.py`, which compiles the taxonomy and folds non-ASCII text. It implements
//! exactly `tag_text`'s rules (the Python code is the specification and the fallback); unit tests
//! compare the two on the evaluation sets and on random text.
//!
//! Character classes come from Python itself (a table of `str` predicates over the Basic
//! Multilingual Plane), so word boundaries agree with Python's `str.isalnum` and `re`'s `\w`/`\d`.
//! Text holding a character beyond that plane is left to the Python code (`tag` returns `None`).

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

const ALNUM: u8 = 1; // str.isalnum()
const DIGIT: u8 = 2; // str.isdigit()
const DECIMAL: u8 = 4; // str.isdecimal(), which is re's \d
const UPPER: u8 = 8; // str.isupper()
const SPACE: u8 = 16; // str.isspace(), which is what str.split() splits on
const UNDERSCORE: u32 = '_' as u32;

/// One word of an anchored pattern: its literal (folded) characters, then optionally more letters.
struct Word {
    literal: Vec<u32>,
    star: bool,
}

/// What a confirmed phrase group contributes: term hits (topic, weight), name hits (only when
/// capitalised in the text), topics put in context, and topics whose overlapping hits it cancels.
struct Group {
    terms: Vec<(usize, f64)>,
    names: Vec<(usize, f64)>,
    context: Vec<usize>,
    excludes: Vec<usize>,
}

/// The groups sharing one automaton key, by how a candidate is confirmed.
struct Bucket {
    exact: Option<usize>,
    stem: Option<usize>,
    patterns: Vec<(Vec<Word>, usize)>,
}

struct Topic {
    threshold: f64,
    title_weight: f64,
    needs_context: bool,
    id: String,
    label: Py<PyAny>,
    iptc: Py<PyAny>,
}

#[derive(Clone, Copy)]
struct Hit {
    weight: f64,
    field: u8,
    start: usize,
    end: usize,
}

/// Code points of a text, whether held as ASCII bytes or decoded.
trait Text {
    fn len(&self) -> usize;
    fn at(&self, i: usize) -> u32;
}

impl Text for [u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }
    fn at(&self, i: usize) -> u32 {
        self[i] as u32
    }
}

impl Text for [u32] {
    fn len(&self) -> usize {
        <[u32]>::len(self)
    }
    fn at(&self, i: usize) -> u32 {
        self[i]
    }
}

/// Every key in a byte trie. Keys only count at the start of a word, so the trie is walked from word
/// starts alone and most words leave it after a byte or two: an Aho-Corasick automaton would pass
/// every byte of the text through its states for the same matches. Transitions are one flat table
/// over the bytes keys use, nodes numbered breadth-first so the hot top levels share cache lines.
struct Trie {
    classes: [u8; 256], // byte to column; 0 for a byte no key holds
    width: usize,       // columns per node
    next: Vec<u32>,     // node * width + column: child << 1 | (a key ends at the child); 0 is none
    keys: Vec<u32>,     // the key ending at each node
}

impl Trie {
    /// A trie over `(index, key)` pairs; matches report `index`.
    fn new<'a>(keys: impl Iterator<Item = (usize, &'a [u8])> + Clone) -> Self {
        let mut classes = [0u8; 256];
        let mut width = 1;
        for (_, key) in keys.clone() {
            for &b in key {
                if classes[b as usize] == 0 {
                    classes[b as usize] = width as u8;
                    width += 1;
                }
            }
        }
        // Built in insertion order, then renumbered breadth-first.
        let mut next = vec![0usize; width];
        let mut ends = vec![u32::MAX];
        for (index, key) in keys {
            let mut node = 0usize;
            for &b in key {
                let slot = node * width + classes[b as usize] as usize;
                if next[slot] == 0 {
                    next.resize(next.len() + width, 0);
                    ends.push(u32::MAX);
                    next[slot] = ends.len() - 1;
                }
                node = next[slot];
            }
            ends[node] = index as u32;
        }
        let mut order = vec![0usize];
        let mut renamed = vec![0usize; ends.len()];
        let mut head = 0;
        while head < order.len() {
            let node = order[head];
            head += 1;
            for &child in &next[node * width..(node + 1) * width] {
                if child != 0 {
                    renamed[child] = order.len();
                    order.push(child);
                }
            }
        }
        let mut table = vec![0u32; next.len()];
        for (new, &old) in order.iter().enumerate() {
            for column in 0..width {
                let child = next[old * width + column];
                if child != 0 {
                    table[new * width + column] =
                        (renamed[child] as u32) << 1 | (ends[child] != u32::MAX) as u32;
                }
            }
        }
        let keys = order.iter().map(|&old| ends[old]).collect();
        Trie {
            classes,
            width,
            next: table,
            keys,
        }
    }

    fn starts(&self, b: u8) -> bool {
        self.next[self.classes[b as usize] as usize] != 0
    }

    /// (key, end byte) of every key starting at `start`, shortest first.
    fn walk(&self, bytes: &[u8], start: usize, out: &mut impl FnMut(usize, usize)) {
        let mut node = 0usize;
        for (i, &b) in bytes[start..].iter().enumerate() {
            let entry = self.next[node * self.width + self.classes[b as usize] as usize];
            if entry == 0 {
                return;
            }
            node = (entry >> 1) as usize;
            if entry & 1 != 0 {
                out(self.keys[node] as usize, start + i + 1);
            }
        }
    }
}

#[pyclass(frozen)]
struct Tagger {
    trie: Trie,
    ascii_trie: Trie, // the ASCII keys alone: no other key can match ASCII text
    buckets: Vec<Bucket>,
    groups: Vec<Group>,
    topics: Vec<Topic>,
    classes: Vec<u8>,
    alnum_starts: bool,     // every key's first byte is an ASCII letter or digit
    ascii_kinds: [u8; 128], // per ASCII byte: 1 if alphanumeric, 2 if an ASCII key starts with it
    round: Py<PyAny>,       // Python's round(), so scores round exactly as tagging.py rounds them
}

type Found = Vec<(usize, f64, Vec<(u8, usize, usize)>)>;

impl Tagger {
    fn class(&self, c: u32) -> u8 {
        self.classes.get(c as usize).copied().unwrap_or(0)
    }

    fn is_letter(&self, c: u32) -> bool {
        // re's [^\W\d_]: a word character that is neither a decimal digit nor the underscore.
        self.class(c) & (ALNUM | DECIMAL) == ALNUM
    }

    fn is_word(&self, c: u32) -> bool {
        c == UNDERSCORE || self.class(c) & ALNUM != 0
    }

    fn pattern_end<T: Text + ?Sized>(&self, words: &[Word], text: &T, start: usize) -> Option<usize> {
        let n = text.len();
        let mut i = start;
        for (k, word) in words.iter().enumerate() {
            if k > 0 {
                if i >= n || text.at(i) != ' ' as u32 {
                    return None;
                }
                i += 1;
            }
            for &c in &word.literal {
                if i >= n || text.at(i) != c {
                    return None;
                }
                i += 1;
            }
            if word.star {
                while i < n && self.is_letter(text.at(i)) {
                    i += 1;
                }
            }
        }
        if i < n && self.is_word(text.at(i)) {
            return None;
        }
        Some(i)
    }

    fn capitalised<T: Text + ?Sized>(&self, text: &T, start: usize, stop: usize) -> bool {
        let mut word_start = true;
        for i in start..stop {
            let class = self.class(text.at(i));
            if class & SPACE != 0 {
                word_start = true;
            } else {
                if word_start && class & UPPER == 0 {
                    return false;
                }
                word_start = false;
            }
        }
        true
    }

    /// `tag_text` over code points: `folded` for matching, `joined` (same length) for capitals.
    fn run<F: Text + ?Sized, J: Text + ?Sized>(
        &self,
        matches: &[(usize, usize, usize)],
        folded: &F,
        joined: &J,
        offset: usize,
    ) -> Found {
        let n = folded.len();
        let mut by_topic: Vec<Vec<Hit>> = (0..self.topics.len()).map(|_| Vec::new()).collect();
        let mut order: Vec<usize> = Vec::new();
        let mut context = vec![false; self.topics.len()];
        let mut excluded: Vec<(usize, u8, usize, usize)> = Vec::new();
        let mut add = |group: &Group, start: usize, stop: usize| {
            let (field, shift) = if start < offset { (0u8, 0) } else { (1u8, offset) };
            for &topic in &group.context {
                context[topic] = true;
            }
            let names = !group.names.is_empty() && self.capitalised(joined, start, stop);
            let terms = group
                .terms
                .iter()
                .chain(if names { group.names.iter() } else { [].iter() });
            for &(topic, weight) in terms {
                if by_topic[topic].is_empty() {
                    order.push(topic);
                }
                by_topic[topic].push(Hit {
                    weight,
                    field,
                    start: start - shift,
                    end: stop - shift,
                });
            }
            for &topic in &group.excludes {
                excluded.push((topic, field, start - shift, stop - shift));
            }
        };
        for &(key, start, end) in matches {
            let bucket = &self.buckets[key];
            if let Some(group) = bucket.exact {
                if end == n || !self.is_word(folded.at(end)) {
                    add(&self.groups[group], start, end);
                }
            }
            if let Some(group) = bucket.stem {
                let mut stop = end;
                while stop < n && self.is_letter(folded.at(stop)) {
                    stop += 1;
                }
                if stop == n || !(folded.at(stop) == UNDERSCORE || self.class(folded.at(stop)) & DIGIT != 0) {
                    add(&self.groups[group], start, stop);
                }
            }
            for (words, group) in &bucket.patterns {
                if let Some(stop) = self.pattern_end(words, folded, start) {
                    add(&self.groups[*group], start, stop);
                }
            }
        }
        let mut found = Vec::new();
        for topic_index in order {
            let topic = &self.topics[topic_index];
            let mut hits = std::mem::take(&mut by_topic[topic_index]);
            if topic.needs_context && !context[topic_index] {
                hits.retain(|h| h.weight >= topic.threshold);
            }
            let weighted = |h: &Hit| h.weight * if h.field == 0 { topic.title_weight } else { 1.0 };
            let mut bound = 0.0;
            for hit in &hits {
                bound += weighted(hit);
            }
            if bound < topic.threshold - 1e-9 * topic.threshold {
                continue;
            }
            let exclusions: Vec<(u8, usize, usize)> = excluded
                .iter()
                .filter(|e| e.0 == topic_index)
                .map(|e| (e.1, e.2, e.3))
                .collect();
            let mut counted = count(hits, &exclusions);
            counted.sort_by(strongest_first);
            let mut score = 0.0;
            for hit in &counted {
                score += weighted(hit);
            }
            if score >= topic.threshold {
                counted.sort_by_key(|h| (h.field, h.start));
                found.push((
                    topic_index,
                    score,
                    counted.iter().map(|h| (h.field, h.start, h.end)).collect(),
                ));
            }
        }
        found
    }
}

fn strongest_first(a: &Hit, b: &Hit) -> std::cmp::Ordering {
    // Python's key (-weight, start - end, field, start): the strongest, then the longest.
    b.weight
        .partial_cmp(&a.weight)
        .unwrap_or(std::cmp::Ordering::Equal)
        .then((a.start as i64 - a.end as i64).cmp(&(b.start as i64 - b.end as i64)))
        .then(a.field.cmp(&b.field))
        .then(a.start.cmp(&b.start))
}

/// The hits that count, taken in runs of mutually overlapping hits (see `_count` in tagging.py).
fn count(mut hits: Vec<Hit>, exclusions: &[(u8, usize, usize)]) -> Vec<Hit> {
    let mut counted = Vec::with_capacity(hits.len());
    hits.sort_by_key(|h| (h.field, h.start));
    let mut run: Vec<Hit> = Vec::new();
    let (mut run_field, mut run_end) = (u8::MAX, 0usize);
    let mut flush = |run: &mut Vec<Hit>, run_field: u8| {
        if run.len() == 1 && exclusions.is_empty() {
            counted.push(run[0]);
        } else if !run.is_empty() {
            let mut blocked: Vec<(usize, usize)> = exclusions
                .iter()
                .filter(|e| e.0 == run_field)
                .map(|e| (e.1, e.2))
                .collect();
            run.sort_by(strongest_first);
            for candidate in run.iter() {
                if !blocked
                    .iter()
                    .any(|&(s, e)| s < candidate.end && candidate.start < e)
                {
                    blocked.push((candidate.start, candidate.end));
                    counted.push(*candidate);
                }
            }
        }
        run.clear();
    };
    for hit in hits {
        if hit.field == run_field && hit.start < run_end {
            run_end = run_end.max(hit.end);
            run.push(hit);
            continue;
        }
        flush(&mut run, run_field);
        run.push(hit);
        run_field = hit.field;
        run_end = hit.end;
    }
    flush(&mut run, run_field);
    counted
}

type BucketSpec = (Option<usize>, Option<usize>, Vec<(Vec<(String, bool)>, usize)>);
type GroupSpec = (Vec<(usize, f64)>, Vec<(usize, f64)>, Vec<usize>, Vec<usize>);
type TopicSpec = (f64, f64, bool, String, Py<PyAny>, Py<PyAny>);

#[pymethods]
impl Tagger {
    #[new]
    fn new(
        py: Python<'_>,
        keys: Vec<String>,
        buckets: Vec<BucketSpec>,
        groups: Vec<GroupSpec>,
        topics: Vec<TopicSpec>,
        classes: &[u8],
    ) -> PyResult<Self> {
        if keys.len() != buckets.len() || classes.len() != 0x10000 {
            return Err(PyValueError::new_err(
                "one bucket per key and a class per BMP code point",
            ));
        }
        if keys.iter().any(|k| k.is_empty()) {
            return Err(PyValueError::new_err("empty key"));
        }
        let trie = Trie::new(keys.iter().map(|k| k.as_bytes()).enumerate());
        let ascii_trie = Trie::new(
            keys.iter()
                .map(|k| k.as_bytes())
                .enumerate()
                .filter(|(_, k)| k.is_ascii()),
        );
        let buckets = buckets
            .into_iter()
            .map(|(exact, stem, patterns)| Bucket {
                exact,
                stem,
                patterns: patterns
                    .into_iter()
                    .map(|(words, group)| {
                        let words = words
                            .into_iter()
                            .map(|(literal, star)| Word {
                                literal: literal.chars().map(|c| c as u32).collect(),
                                star,
                            })
                            .collect();
                        (words, group)
                    })
                    .collect(),
            })
            .collect::<Vec<_>>();
        let groups = groups
            .into_iter()
            .map(|(terms, names, context, excludes)| Group {
                terms,
                names,
                context,
                excludes,
            })
            .collect::<Vec<_>>();
        let topics = topics
            .into_iter()
            .map(
                |(threshold, title_weight, needs_context, id, label, iptc)| Topic {
                    threshold,
                    title_weight,
                    needs_context,
                    id,
                    label,
                    iptc,
                },
            )
            .collect::<Vec<_>>();
        let valid_group = |g: &usize| *g < groups.len();
        let valid_topic = |t: &usize| *t < topics.len();
        for bucket in &buckets {
            let mut ids = bucket
                .exact
                .iter()
                .chain(bucket.stem.iter())
                .chain(bucket.patterns.iter().map(|p| &p.1));
            if !ids.all(valid_group) {
                return Err(PyValueError::new_err("bucket names a group that does not exist"));
            }
        }
        for group in &groups {
            let mut ids = group.terms.iter().chain(group.names.iter()).map(|t| &t.0);
            if !ids.all(valid_topic) || !group.context.iter().chain(group.excludes.iter()).all(valid_topic) {
                return Err(PyValueError::new_err("group names a topic that does not exist"));
            }
        }
        let alnum_starts = keys
            .iter()
            .all(|k| k.as_bytes()[0].is_ascii_alphanumeric() || !k.is_ascii());
        let mut ascii_kinds = [0u8; 128];
        for (b, kind) in ascii_kinds.iter_mut().enumerate() {
            *kind = (classes[b] & ALNUM) | (ascii_trie.starts(b as u8) as u8) << 1;
        }
        let round = py.import("builtins")?.getattr("round")?.unbind();
        let classes = classes.to_vec();
        Ok(Tagger {
            trie,
            ascii_trie,
            buckets,
            groups,
            topics,
            classes,
            alnum_starts,
            ascii_kinds,
            round,
        })
    }

    /// `tag` for a story whose fields are both ASCII, folding it here; None when one is not.
    fn tag_ascii<'py>(
        &self,
        py: Python<'py>,
        headline: &str,
        body: &str,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        if !headline.is_ascii() || !body.is_ascii() {
            return Ok(None);
        }
        let mut joined = Vec::with_capacity(headline.len() + 1 + body.len());
        joined.extend_from_slice(headline.as_bytes());
        joined.push(b'\n');
        joined.extend_from_slice(body.as_bytes());
        let folded = joined.to_ascii_lowercase();
        let found = self.find_ascii(&joined, &folded, headline.len() + 1);
        let texts = [headline, body];
        self.shape(py, found, |f, s, e| &texts[f as usize][s..e])
            .map(Some)
    }

    /// The tags `tag_text` returns, from the joined fields (headline, newline, body) and their
    /// fold; None when the text holds a character beyond the Basic Multilingual Plane.
    fn tag<'py>(
        &self,
        py: Python<'py>,
        joined: &str,
        folded: &str,
        offset: usize,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let misfolded = || PyValueError::new_err("the fold must keep every character in place");
        let shift = |f: u8| if f == 0 { 0 } else { offset };
        if folded.is_ascii() && joined.is_ascii() {
            if folded.len() != joined.len() {
                return Err(misfolded());
            }
            let found = self.find_ascii(joined.as_bytes(), folded.as_bytes(), offset);
            return self
                .shape(py, found, |f, s, e| &joined[s + shift(f)..e + shift(f)])
                .map(Some);
        }
        let beyond_bmp = |b: &[u8]| b.iter().any(|&x| x >= 0xF0);
        if beyond_bmp(folded.as_bytes()) || beyond_bmp(joined.as_bytes()) {
            return Ok(None);
        }
        // Each text decoded once: code points, and for the joined text where each one starts.
        let points: Vec<u32> = folded.chars().map(|c| c as u32).collect();
        let (mut byte_at, joined_points): (Vec<usize>, Vec<u32>) =
            joined.char_indices().map(|(i, c)| (i, c as u32)).unzip();
        if points.len() != joined_points.len() {
            return Err(misfolded());
        }
        byte_at.push(joined.len());
        let bytes = folded.as_bytes();
        let mut matches: Vec<(usize, usize, usize)> = Vec::new();
        let mut after_alnum = false;
        for (char_index, (i, c)) in folded.char_indices().enumerate() {
            if !after_alnum && self.trie.starts(bytes[i]) {
                self.trie.walk(bytes, i, &mut |key, end| {
                    matches.push((key, char_index, char_index + folded[i..end].chars().count()))
                });
            }
            after_alnum = self.class(c as u32) & ALNUM != 0;
        }
        let found = self.run(&matches, points.as_slice(), joined_points.as_slice(), offset);
        self.shape(py, found, |f, s, e| {
            &joined[byte_at[s + shift(f)]..byte_at[e + shift(f)]]
        })
        .map(Some)
    }
}

impl Tagger {
    /// The tag dicts of `tag_text`, best first: topic, label, iptc, score (rounded to 3 places),
    /// evidence [{phrase, field, start, end}] with offsets in the field.
    fn shape<'py, 'a>(
        &self,
        py: Python<'py>,
        found: Found,
        phrase: impl Fn(u8, usize, usize) -> &'a str,
    ) -> PyResult<Bound<'py, PyList>> {
        let mut tags = Vec::with_capacity(found.len());
        for (index, score, evidence) in found {
            let rounded: f64 = self.round.bind(py).call1((score, 3))?.extract()?;
            tags.push((rounded, index, evidence));
        }
        tags.sort_by(|a, b| {
            b.0.partial_cmp(&a.0)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(self.topics[a.1].id.cmp(&self.topics[b.1].id))
        });
        let fields = [intern!(py, "headline"), intern!(py, "body")];
        let list = PyList::empty(py);
        for (score, index, evidence) in tags {
            let topic = &self.topics[index];
            let items = PyList::empty(py);
            for (f, s, e) in evidence {
                let item = PyDict::new(py);
                item.set_item(intern!(py, "phrase"), phrase(f, s, e))?;
                item.set_item(intern!(py, "field"), fields[f as usize])?;
                item.set_item(intern!(py, "start"), s)?;
                item.set_item(intern!(py, "end"), e)?;
                items.append(item)?;
            }
            let tag = PyDict::new(py);
            tag.set_item(intern!(py, "topic"), &topic.id)?;
            tag.set_item(intern!(py, "label"), topic.label.bind(py))?;
            tag.set_item(intern!(py, "iptc"), topic.iptc.bind(py))?;
            tag.set_item(intern!(py, "score"), score)?;
            tag.set_item(intern!(py, "evidence"), items)?;
            list.append(tag)?;
        }
        Ok(list)
    }

    fn find_ascii(&self, joined: &[u8], folded: &[u8], offset: usize) -> Found {
        // 64 bytes at a time: masks of alphanumerics and of key starts without a branch per byte,
        // then a walk from each key start that follows no alphanumeric.
        let mut matches: Vec<(usize, usize, usize)> = Vec::new();
        let mut carry = 0u64;
        for (c, chunk) in folded.chunks(64).enumerate() {
            // Every key starts alphanumeric: the walk itself leaves at once where none starts.
            let simd = if self.alnum_starts {
                simd_alnum(chunk)
            } else {
                None
            };
            let (alnum, starts) = match simd {
                Some(alnum) => (alnum, alnum),
                None => {
                    let (mut alnum, mut starts) = (0u64, 0u64);
                    for (j, &b) in chunk.iter().enumerate() {
                        let kind = self.ascii_kinds[(b & 0x7F) as usize] as u64;
                        alnum |= (kind & 1) << j;
                        starts |= (kind >> 1) << j;
                    }
                    (alnum, starts)
                }
            };
            let mut candidates = starts & !(alnum << 1 | carry);
            carry = alnum >> 63;
            while candidates != 0 {
                let i = c * 64 + candidates.trailing_zeros() as usize;
                self.ascii_trie
                    .walk(folded, i, &mut |key, end| matches.push((key, i, end)));
                candidates &= candidates - 1;
            }
        }
        self.run(&matches, folded, joined, offset)
    }
}

/// Bit j set when byte j of a full 64-byte ASCII chunk is alphanumeric (str.isalnum), 16 at a time.
#[cfg(target_arch = "x86_64")]
fn simd_alnum(chunk: &[u8]) -> Option<u64> {
    use std::arch::x86_64::*;
    if chunk.len() != 64 {
        return None;
    }
    let mut mask = 0u64;
    // SAFETY: SSE2 is part of x86_64; each load reads 16 of the chunk's 64 bytes.
    unsafe {
        let between = |v: __m128i, low: u8, high: u8| {
            _mm_and_si128(
                _mm_cmpgt_epi8(v, _mm_set1_epi8(low as i8 - 1)),
                _mm_cmplt_epi8(v, _mm_set1_epi8(high as i8 + 1)),
            )
        };
        for k in 0..4 {
            let v = _mm_loadu_si128(chunk.as_ptr().add(k * 16) as *const __m128i);
            let letter = between(_mm_or_si128(v, _mm_set1_epi8(0x20)), b'a', b'z');
            let alnum = _mm_or_si128(letter, between(v, b'0', b'9'));
            mask |= ((_mm_movemask_epi8(alnum) as u32 & 0xFFFF) as u64) << (k * 16);
        }
    }
    Some(mask)
}

#[cfg(not(target_arch = "x86_64"))]
fn simd_alnum(_chunk: &[u8]) -> Option<u64> {
    None
}

#[pymodule]
fn _tagging_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Tagger>()?;
    Ok(())
}

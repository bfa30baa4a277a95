//! fastText's prediction for a supervised model with a product-quantized input matrix and
//! hierarchical softmax (the lid.176 language-ID model `clean.detect_language` uses), for
//! `pipeline/clean.py`.
//!
//! fastText's own C++ (through fasttext-predict) is the specification and the fallback; this gives
//! the same labels and the same probabilities, bit for bit: the same tokens, the same subword
//! hashes, the same float operations in the same order. (Tested on x86-64. Where a C++ compiler
//! fuses multiply-adds by default, as GCC does for aarch64, fastText's last bits may differ.) It is faster where fastText is slow for
//! this model: fastText builds a `std::string` for every character n-gram and hashes it from its
//! first byte, then looks it up twice in a node-based `std::unordered_map` (its pruned n-grams);
//! here each n-gram's hash extends its prefix's, and one open-addressing look-up finds its row.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const MAGIC: i32 = 793712314;
const VERSION: i32 = 12;
const KSUB: usize = 256;
const EOS: &[u8] = b"</s>";
const LABEL: &[u8] = b"__label__";
const LOSS_HS: i32 = 1;
const MODEL_SUP: i32 = 3;

/// Multiplicative hashing for keys that are already well spread (fastText's own hashes).
#[derive(Default)]
struct SpreadHasher(u64);

impl Hasher for SpreadHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ byte as u64).wrapping_mul(0x100000001B3);
        }
    }
    fn write_u32(&mut self, key: u32) {
        self.0 = (key as u64).wrapping_mul(0x9E3779B97F4A7C15);
    }
    fn write_usize(&mut self, key: usize) {
        self.0 = (self.0 ^ key as u64).wrapping_mul(0x9E3779B97F4A7C15);
    }
}

type Spread<K, V> = HashMap<K, V, BuildHasherDefault<SpreadHasher>>;

/// fastText's `Dictionary::hash`: 32-bit FNV-1a over the bytes, each sign-extended first.
fn fnv(h: u32, byte: u8) -> u32 {
    (h ^ (byte as i8 as i32 as u32)).wrapping_mul(16777619)
}

const FNV_START: u32 = 2166136261;

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> PyResult<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| PyValueError::new_err("fastText model: file ends early"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn i32(&mut self) -> PyResult<i32> {
        Ok(i32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn i64(&mut self) -> PyResult<i64> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn u8(&mut self) -> PyResult<u8> {
        Ok(self.take(1)?[0])
    }
    fn f32s(&mut self, n: usize) -> PyResult<Vec<f32>> {
        let raw = self.take(
            n.checked_mul(4)
                .ok_or_else(|| PyValueError::new_err("fastText model: size"))?,
        )?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect())
    }
    fn count(&mut self) -> PyResult<usize> {
        usize::try_from(self.i64()?).map_err(|_| PyValueError::new_err("fastText model: negative size"))
    }
    fn size(&mut self) -> PyResult<usize> {
        usize::try_from(self.i32()?).map_err(|_| PyValueError::new_err("fastText model: negative size"))
    }
    fn cstr(&mut self) -> PyResult<&'a [u8]> {
        let rest = &self.bytes[self.at..];
        let len = rest.iter().position(|&b| b == 0);
        let len = len.ok_or_else(|| PyValueError::new_err("fastText model: unterminated word"))?;
        let word = &rest[..len];
        self.at += len + 1;
        Ok(word)
    }
}

/// fastText's `ProductQuantizer`.
struct Quantizer {
    nsubq: usize,
    dsub: usize,
    lastdsub: usize,
    centroids: Vec<f32>,
}

impl Quantizer {
    /// A quantizer of vectors of ``dim`` values.
    fn load(r: &mut Reader, dim: usize) -> PyResult<Self> {
        let (own_dim, nsubq, dsub, lastdsub) = (r.size()?, r.size()?, r.size()?, r.size()?);
        let covered = dsub
            .checked_mul(nsubq.wrapping_sub(1))
            .and_then(|d| d.checked_add(lastdsub));
        if nsubq == 0 || dsub == 0 || lastdsub == 0 || own_dim != dim || covered != Some(dim) {
            return Err(PyValueError::new_err("fastText model: inconsistent quantizer"));
        }
        let centroids = r.f32s(
            dim.checked_mul(KSUB)
                .ok_or_else(|| PyValueError::new_err("fastText model: size"))?,
        )?;
        Ok(Quantizer {
            nsubq,
            dsub,
            lastdsub,
            centroids,
        })
    }

    fn centroid(&self, m: usize, code: u8) -> &[f32] {
        let i = code as usize;
        if m == self.nsubq - 1 {
            let at = m * KSUB * self.dsub + i * self.lastdsub;
            &self.centroids[at..at + self.lastdsub]
        } else {
            let at = (m * KSUB + i) * self.dsub;
            &self.centroids[at..at + self.dsub]
        }
    }
}

#[derive(Clone, Copy)]
struct Node {
    left: i32,
    right: i32,
}

#[pyclass(frozen)]
struct LanguageModel {
    dim: usize,
    minn: usize,
    maxn: usize,
    bucket: u32,
    nwords: i32,
    /// Word (and label) ids by their bytes.
    ids: Spread<Box<[u8]>, i32>,
    /// Each entry's input rows: itself, then its character n-grams (fastText's `initNgrams`).
    subwords: Vec<Vec<i32>>,
    /// Row of each n-gram bucket the pruned model kept.
    pruned: Spread<u32, i32>,
    codes: Vec<u8>,
    quantizer: Quantizer,
    norm_codes: Vec<u8>,
    norms: Quantizer,
    /// The hierarchical softmax's inner nodes, one row of `dim` each.
    output: Vec<f32>,
    labels: Vec<Py<PyString>>,
    tree: Vec<Node>,
}

impl LanguageModel {
    /// `Dictionary::computeSubwords` of ``<word>`` into ``rows``.
    fn push_ngrams(&self, word: &[u8], rows: &mut Vec<i32>) {
        let len = word.len() + 2;
        let at = |i: usize| -> u8 {
            if i == 0 {
                b'<'
            } else if i == len - 1 {
                b'>'
            } else {
                word[i - 1]
            }
        };
        for i in 0..len {
            if at(i) & 0xC0 == 0x80 {
                continue;
            }
            let mut h = FNV_START;
            let mut j = i;
            let mut n = 1;
            while j < len && n <= self.maxn {
                h = fnv(h, at(j));
                j += 1;
                while j < len && at(j) & 0xC0 == 0x80 {
                    h = fnv(h, at(j));
                    j += 1;
                }
                if n >= self.minn && !(n == 1 && (i == 0 || j == len)) {
                    if let Some(&row) = self.pruned.get(&(h % self.bucket)) {
                        rows.push(self.nwords + row);
                    }
                }
                n += 1;
            }
        }
    }

    /// `Dictionary::getLine`: the input rows of the text's first line (up to and including its
    /// end-of-line token), labels left out.
    fn rows_of(&self, text: &[u8]) -> Vec<i32> {
        let mut rows = Vec::with_capacity(text.len() * 3);
        let mut at = 0;
        loop {
            // fastText's readWord: bytes up to a space, tab, CR, LF, VT, FF or NUL; a LF alone is "</s>".
            let mut start = at;
            let word: &[u8];
            loop {
                if at == text.len() {
                    word = &text[start..at];
                    break;
                }
                let c = text[at];
                if matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c | 0) {
                    if at == start {
                        at += 1;
                        if c == b'\n' {
                            word = EOS;
                            break;
                        }
                        start = at;
                        continue;
                    }
                    word = &text[start..at]; // a LF after a word is read again, as "</s>"
                    break;
                }
                at += 1;
            }
            if word.is_empty() {
                return rows;
            }
            match self.ids.get(word) {
                Some(&id) if id < self.nwords => rows.extend_from_slice(&self.subwords[id as usize]),
                Some(_) => {} // a label
                None if word.starts_with(LABEL) || word == EOS => {}
                None => self.push_ngrams(word, &mut rows),
            }
            if word == EOS {
                return rows;
            }
        }
    }

    /// `Model::computeHidden` with `QuantMatrix::addRowToVector`.
    fn hidden(&self, rows: &[i32]) -> Vec<f32> {
        let mut hidden = vec![0f32; self.dim];
        let q = &self.quantizer;
        for &row in rows {
            let row = row as usize;
            let norm = self.norms.centroid(0, self.norm_codes[row])[0];
            let code = &self.codes[q.nsubq * row..q.nsubq * (row + 1)];
            for (m, &c) in code.iter().enumerate() {
                let centroid = q.centroid(m, c);
                let out = &mut hidden[m * q.dsub..m * q.dsub + centroid.len()];
                for (x, &c) in out.iter_mut().zip(centroid) {
                    *x += norm * c;
                }
            }
        }
        let scale = (1.0f64 / rows.len() as f64) as f32;
        for x in &mut hidden {
            *x *= scale;
        }
        hidden
    }

    /// `HierarchicalSoftmaxLoss::dfs`.
    fn dfs(
        &self,
        k: usize,
        floor: f32,
        node: usize,
        score: f32,
        heap: &mut Vec<(f32, usize)>,
        hidden: &[f32],
    ) {
        if score < floor || (heap.len() == k && score < heap[0].0) {
            return;
        }
        let Node { left, right } = self.tree[node];
        if left == -1 && right == -1 {
            heap.push((score, node));
            push_heap(heap);
            if heap.len() > k {
                pop_heap(heap);
                heap.pop();
            }
            return;
        }
        let row = &self.output[(node - self.labels.len()) * self.dim..][..self.dim];
        let mut f = 0f32;
        for (&w, &h) in row.iter().zip(hidden) {
            f += w * h;
        }
        // fastText's `1. / (1 + std::exp(-f))`: the sum in float, the quotient in double.
        let f = (1.0 / (1.0f32 + (-f).exp()) as f64) as f32;
        self.dfs(
            k,
            floor,
            left as usize,
            score + std_log((1.0 - f as f64) as f32),
            heap,
            hidden,
        );
        self.dfs(k, floor, right as usize, score + std_log(f), heap, hidden);
    }
}

/// fastText's `std_log`: the log of ``x + 1e-5``, in double, returned as a float.
fn std_log(x: f32) -> f32 {
    (x as f64 + 1e-5).ln() as f32
}

// libstdc++'s heap algorithms with fastText's `comparePairs` (the greater score first), so that
// ties leave the same predictions in the same order.
fn before(a: &(f32, usize), b: &(f32, usize)) -> bool {
    a.0 > b.0
}

fn sift_up(heap: &mut [(f32, usize)], mut hole: usize, top: usize, value: (f32, usize)) {
    while hole > top {
        let parent = (hole - 1) / 2;
        if !before(&heap[parent], &value) {
            break;
        }
        heap[hole] = heap[parent];
        hole = parent;
    }
    heap[hole] = value;
}

fn push_heap(heap: &mut [(f32, usize)]) {
    let last = heap.len() - 1;
    sift_up(heap, last, 0, heap[last]);
}

fn adjust_heap(heap: &mut [(f32, usize)], len: usize, value: (f32, usize)) {
    let mut hole = 0;
    let mut child = 0;
    while len > 0 && child < (len - 1) / 2 {
        child = 2 * (child + 1);
        if before(&heap[child], &heap[child - 1]) {
            child -= 1;
        }
        heap[hole] = heap[child];
        hole = child;
    }
    if len.is_multiple_of(2) && len >= 2 && child == (len - 2) / 2 {
        child = 2 * (child + 1);
        heap[hole] = heap[child - 1];
        hole = child - 1;
    }
    sift_up(heap, hole, 0, value);
}

/// Moves the first element to the end; the rest stay a heap.
fn pop_heap(heap: &mut [(f32, usize)]) {
    let len = heap.len();
    if len > 1 {
        let last = len - 1;
        let value = heap[last];
        heap[last] = heap[0];
        adjust_heap(heap, last, value);
    }
}

#[pymethods]
impl LanguageModel {
    /// A model from the bytes of a fastText ``.ftz`` file (supervised, quantized input,
    /// hierarchical softmax); ValueError for any other kind.
    #[new]
    fn new(py: Python<'_>, model: &[u8]) -> PyResult<Self> {
        let r = &mut Reader { bytes: model, at: 0 };
        if r.i32()? != MAGIC || r.i32()? != VERSION {
            return Err(PyValueError::new_err("not a fastText model of version 12"));
        }
        let args: Vec<i32> = (0..12).map(|_| r.i32()).collect::<PyResult<_>>()?;
        r.take(8)?; // t
        let (dim, word_ngrams, loss, kind, bucket, minn, maxn) =
            (args[0], args[5], args[6], args[7], args[8], args[9], args[10]);
        if loss != LOSS_HS || kind != MODEL_SUP || word_ngrams > 1 || dim <= 0 || bucket <= 0 {
            return Err(PyValueError::new_err(
                "only supervised fastText models with hierarchical softmax and no word n-grams",
            ));
        }
        let size = r.size()?;
        let nwords = r.i32()?;
        let nlabels = r.size()?;
        r.i64()?; // ntokens
        let prune_size = r.i64()?;
        if prune_size <= 0 || nlabels < 2 || nwords < 0 || nwords as usize + nlabels != size {
            return Err(PyValueError::new_err("only pruned (quantized) fastText models"));
        }
        let mut ids = Spread::default();
        let mut words = Vec::with_capacity(size);
        let mut counts = Vec::with_capacity(nlabels);
        let mut labels = Vec::with_capacity(nlabels);
        for id in 0..size {
            let word = r.cstr()?;
            let count = r.i64()?;
            let is_label = r.u8()? == 1;
            if is_label != (id >= nwords as usize) {
                return Err(PyValueError::new_err(
                    "fastText model: words and labels out of order",
                ));
            }
            if is_label {
                // buildTree's inner nodes start at a count of 1e15
                if !(0..1_000_000_000_000_000).contains(&count) {
                    return Err(PyValueError::new_err(
                        "fastText model: a label count out of range",
                    ));
                }
                counts.push(count);
                labels.push(PyString::new(py, &String::from_utf8_lossy(word)).unbind());
            }
            ids.insert(Box::from(word), id as i32);
            words.push(word);
        }
        let mut pruned = Spread::default();
        for _ in 0..prune_size {
            let bucket_id = r.i32()?;
            let row = r.i32()?;
            pruned.insert(bucket_id as u32, row);
        }
        if r.u8()? != 1 || r.u8()? != 1 {
            return Err(PyValueError::new_err(
                "only fastText models with a quantized, normed input matrix",
            ));
        }
        let rows = r.count()?;
        let cols = r.count()?;
        let codesize = r.size()?;
        let codes = r.take(codesize)?.to_vec();
        let quantizer = Quantizer::load(r, dim as usize)?;
        let norm_codes = r.take(rows)?.to_vec();
        let norms = Quantizer::load(r, 1)?;
        if cols != dim as usize || Some(codesize) != rows.checked_mul(quantizer.nsubq) {
            return Err(PyValueError::new_err("fastText model: inconsistent input matrix"));
        }
        if r.u8()? != 0 {
            return Err(PyValueError::new_err(
                "only fastText models with a dense output matrix",
            ));
        }
        let (out_rows, out_cols) = (r.count()?, r.count()?);
        if out_rows != nlabels || out_cols != dim as usize {
            return Err(PyValueError::new_err(
                "fastText model: inconsistent output matrix",
            ));
        }
        let output = r.f32s(out_rows * out_cols)?; // both checked against small numbers above
        if r.at != model.len() {
            return Err(PyValueError::new_err(
                "fastText model: bytes after the output matrix",
            ));
        }
        let mut model = LanguageModel {
            dim: dim as usize,
            minn: minn as usize,
            maxn: maxn as usize,
            bucket: bucket as u32,
            nwords,
            ids,
            subwords: Vec::new(),
            pruned,
            codes,
            quantizer,
            norm_codes,
            norms,
            output,
            labels,
            tree: huffman(&counts),
        };
        let mut subwords = Vec::with_capacity(size);
        for (id, word) in words.iter().enumerate().take(nwords as usize) {
            let mut rows = vec![id as i32];
            if *word != EOS {
                model.push_ngrams(word, &mut rows);
            }
            if rows.iter().any(|&row| row as usize >= model.norm_codes.len()) {
                return Err(PyValueError::new_err(
                    "fastText model: a row beyond the input matrix",
                ));
            }
            subwords.push(rows);
        }
        if model
            .pruned
            .values()
            .any(|&row| row < 0 || (nwords + row) as usize >= model.norm_codes.len())
        {
            return Err(PyValueError::new_err(
                "fastText model: a pruned row beyond the input matrix",
            ));
        }
        model.subwords = subwords;
        Ok(model)
    }

    /// The ``k`` most likely ``(probability, label)`` of the text's first line, most likely first,
    /// those below ``threshold`` left out: fastText's `predict(text, k, threshold)` (``k`` = -1:
    /// every label).
    fn predict(
        &self,
        py: Python<'_>,
        text: &str,
        k: i64,
        threshold: f32,
    ) -> PyResult<Vec<(f32, Py<PyString>)>> {
        let k = match k {
            -1 => self.labels.len(),
            k if k >= 1 => (k as u64).min(self.labels.len() as u64) as usize,
            _ => {
                return Err(PyValueError::new_err(
                    "k must be at least 1, or -1 for every label",
                ))
            }
        };
        let rows = self.rows_of(text.as_bytes());
        let mut heap = Vec::with_capacity(k + 1);
        if !rows.is_empty() {
            let hidden = self.hidden(&rows);
            self.dfs(
                k,
                std_log(threshold),
                self.tree.len() - 1,
                0.0,
                &mut heap,
                &hidden,
            );
            let mut end = heap.len();
            while end > 1 {
                pop_heap(&mut heap[..end]);
                end -= 1;
            }
        }
        Ok(heap
            .into_iter()
            .map(|(score, node)| (score.exp(), self.labels[node].clone_ref(py)))
            .collect())
    }
}

/// `HierarchicalSoftmaxLoss::buildTree`: a Huffman tree over the label counts (most frequent
/// first), leaves first, the root last.
fn huffman(counts: &[i64]) -> Vec<Node> {
    let osz = counts.len();
    let mut tree = vec![Node { left: -1, right: -1 }; 2 * osz - 1];
    let mut count: Vec<i64> = vec![1_000_000_000_000_000; 2 * osz - 1];
    count[..osz].copy_from_slice(counts);
    let mut leaf = osz as i64 - 1;
    let mut node = osz;
    for i in osz..2 * osz - 1 {
        let mut mini = [0usize; 2];
        for slot in &mut mini {
            if leaf >= 0 && count[leaf as usize] < count[node] {
                *slot = leaf as usize;
                leaf -= 1;
            } else {
                *slot = node;
                node += 1;
            }
        }
        tree[i] = Node {
            left: mini[0] as i32,
            right: mini[1] as i32,
        };
        count[i] = count[mini[0]].saturating_add(count[mini[1]]);
    }
    tree
}

#[pymodule]
fn _langid_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LanguageModel>()?;
    Ok(())
}

//! The word count's fast programs, one binary with three modes, each a
//! subtask program under the task contract (`docs/task-contract.md`):
//! records are lines on stdin and stdout.
//!
//! - `tokenize`: one lower-cased word per output line. Words are runs of ASCII
//!   letters, digits and apostrophes; every other byte separates them (what
//!   `examples/wordcount/tokenize.awk` does under the C locale).
//! - `tokenize --combine`: the same words, but counted per input block of
//!   `--block-mib` (default 4) and written as `word<TAB>count`, one line per
//!   distinct word of the block: Hadoop's "combiner". Memory stays bounded by
//!   the block, the output is pipelined block by block, and the hash edge
//!   after it carries a few times fewer records.
//! - `count`: sums lines `word` (1 each) or `word<TAB>n` (n each) per word,
//!   then writes `word<TAB>total` sorted by the word's bytes — byte for byte
//!   what `examples/wordcount/count.py` writes for the same input.
//!
//! Reads are large (1 MiB+) and outputs are written in large buffers, so the
//! cost per word is a few byte compares and one hash-map probe.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Read, Write};
use std::process::ExitCode;

const READ_SIZE: usize = 1 << 20;
const OUT_FLUSH: usize = 256 << 10;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("tokenize") => match parse_tokenize(&args[1..]) {
            Ok(None) => tokenize(io::stdin().lock(), io::stdout().lock()),
            Ok(Some(block)) => tokenize_combine(io::stdin().lock(), io::stdout().lock(), block),
            Err(usage) => return fail(&usage),
        },
        Some("count") if args.len() == 1 => count(io::stdin().lock(), io::stdout().lock()),
        _ => return fail("usage: wordcount-rust tokenize [--combine [--block-mib N]] | count"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The consumer closed our stdout early (like `head`): nothing is wrong with us.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(&format!("wordcount-rust: {e}")),
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("{msg}");
    ExitCode::from(2)
}

/// `Some(block bytes)` with `--combine`.
fn parse_tokenize(args: &[String]) -> Result<Option<usize>, String> {
    let mut combine = false;
    let mut block_mib = 4usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--combine" => combine = true,
            "--block-mib" => {
                block_mib = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0 && n <= 1024)
                    .ok_or("--block-mib needs a whole number of MiB from 1 to 1024")?;
            }
            other => return Err(format!("tokenize: unknown option {other}; use --combine [--block-mib N]")),
        }
    }
    Ok(combine.then_some(block_mib << 20))
}

/// FxHash (rustc's): one multiply per word of key. Fixed, so runs repeat.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            h = (h.rotate_left(5) ^ w).wrapping_mul(K);
        }
        let mut tail = 0u64;
        for (i, &b) in chunks.remainder().iter().enumerate() {
            tail |= u64::from(b) << (8 * i);
        }
        self.0 = (h.rotate_left(5) ^ tail ^ bytes.len() as u64).wrapping_mul(K);
    }
    fn write_u8(&mut self, _: u8) {
        // `[u8]`'s Hash writes the length first (as usize) and then the bytes;
        // `write` mixes the length in already.
    }
    fn write_usize(&mut self, _: usize) {}
    fn write_u128(&mut self, v: u128) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let h = (self.0.rotate_left(5) ^ v as u64).wrapping_mul(K);
        self.0 = (h.rotate_left(5) ^ (v >> 64) as u64).wrapping_mul(K);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Counts per word. Words of up to 15 bytes (nearly all) are packed into a
/// `u128` with their length in the top byte, so a probe compares two
/// integers instead of calling `memcmp` on a heap key; longer words go to a
/// map of their own.
#[derive(Default)]
struct Counts {
    short: FxMap<u128, u64>,
    long: FxMap<Vec<u8>, u64>,
}

impl Counts {
    fn add(&mut self, word: &[u8], n: u64) {
        if word.len() <= 15 {
            let mut b = [0u8; 16];
            b[..word.len()].copy_from_slice(word);
            b[15] = word.len() as u8;
            *self.short.entry(u128::from_le_bytes(b)).or_insert(0) += n;
        } else if let Some(c) = self.long.get_mut(word) {
            *c += n;
        } else {
            self.long.insert(word.to_vec(), n);
        }
    }

    /// Every `(word, count)`, emptying the maps (their memory is kept for reuse).
    fn drain(&mut self, mut each: impl FnMut(&[u8], u64)) {
        for (k, n) in self.short.drain() {
            let b = k.to_le_bytes();
            each(&b[..usize::from(b[15])], n);
        }
        for (w, n) in self.long.drain() {
            each(&w, n);
        }
    }
}

/// Byte class: 0 separates words, otherwise the lower-cased byte.
fn word_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    for b in 0..=255u8 {
        if b.is_ascii_alphanumeric() || b == b'\'' {
            t[b as usize] = b.to_ascii_lowercase();
        }
    }
    t
}

/// Reads `input` in large reads and hands `each` runs of whole lines (the
/// final line may lack its newline). `min` > READ_SIZE gathers larger blocks.
fn for_each_block(mut input: impl Read, min: usize, mut each: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
    // Room for a block, one more read and a partial line: no reallocation.
    let mut buf: Vec<u8> = Vec::with_capacity(min.max(READ_SIZE) + 2 * READ_SIZE);
    loop {
        let filled = buf.len();
        buf.resize(filled + READ_SIZE, 0);
        let n = match input.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                buf.truncate(filled);
                continue;
            }
            Err(e) => return Err(e),
        };
        buf.truncate(filled + n);
        if n == 0 {
            if !buf.is_empty() {
                each(&buf)?;
            }
            return Ok(());
        }
        if buf.len() < min {
            continue;
        }
        if let Some(cut) = memchr::memrchr(b'\n', &buf[filled..]).map(|i| filled + i + 1) {
            each(&buf[..cut])?;
            buf.drain(..cut);
        }
    }
}

/// Calls `word` for every word of `text`, lower-cased into `scratch`.
fn words(text: &[u8], table: &[u8; 256], scratch: &mut Vec<u8>, mut word: impl FnMut(&[u8])) {
    let is_word = |b: u8| table[usize::from(b)] != 0;
    let mut i = 0;
    while i < text.len() {
        // Find the run first, then lower-case it in one pass: no per-byte push.
        let start = i + text[i..].iter().position(|&b| is_word(b)).unwrap_or(text.len() - i);
        let end = start + text[start..].iter().position(|&b| !is_word(b)).unwrap_or(text.len() - start);
        i = end;
        if end > start {
            scratch.clear();
            scratch.extend(text[start..end].iter().map(|&b| table[usize::from(b)]));
            word(scratch);
        }
    }
}

fn tokenize(input: impl Read, mut output: impl Write) -> io::Result<()> {
    let table = word_table();
    let mut out = Vec::with_capacity(OUT_FLUSH + READ_SIZE);
    let mut scratch = Vec::with_capacity(64);
    for_each_block(input, 0, |block| {
        words(block, &table, &mut scratch, |w| {
            out.extend_from_slice(w);
            out.push(b'\n');
        });
        if out.len() >= OUT_FLUSH {
            output.write_all(&out)?;
            out.clear();
        }
        Ok(())
    })?;
    output.write_all(&out)?;
    output.flush()
}

fn tokenize_combine(input: impl Read, mut output: impl Write, block: usize) -> io::Result<()> {
    let table = word_table();
    let mut out = Vec::with_capacity(OUT_FLUSH + READ_SIZE);
    let mut scratch = Vec::with_capacity(64);
    let mut counts = Counts::default();
    for_each_block(input, block, |text| {
        words(text, &table, &mut scratch, |w| counts.add(w, 1));
        counts.drain(|w, n| {
            out.extend_from_slice(w);
            out.push(b'\t');
            push_decimal(&mut out, n);
            out.push(b'\n');
        });
        output.write_all(&out)?;
        out.clear();
        Ok(())
    })?;
    output.flush()
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// `word<TAB>n` with n a decimal count, else the whole line counts once.
fn split_count(line: &[u8]) -> (&[u8], u64) {
    if !line.last().is_some_and(u8::is_ascii_digit) {
        return (line, 1);
    }
    if let Some(tab) = memchr::memrchr(b'\t', line) {
        let digits = &line[tab + 1..];
        if !digits.is_empty() && digits.len() <= 19 && digits.iter().all(u8::is_ascii_digit) {
            let n = digits.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            return (&line[..tab], n);
        }
    }
    (line, 1)
}

fn count(input: impl Read, mut output: impl Write) -> io::Result<()> {
    let mut counts = Counts::default();
    for_each_block(input, 0, |block| {
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', block).chain(std::iter::once(block.len())) {
            let line = &block[start..end];
            start = end + 1;
            if !line.is_empty() {
                let (word, n) = split_count(line);
                counts.add(word, n);
            }
        }
        Ok(())
    })?;
    let mut sorted: Vec<(Vec<u8>, u64)> = Vec::with_capacity(counts.short.len() + counts.long.len());
    counts.drain(|w, n| sorted.push((w.to_vec(), n)));
    sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::with_capacity(OUT_FLUSH + 4096);
    for (w, n) in sorted {
        if w.is_empty() {
            continue;
        }
        out.extend_from_slice(&w);
        out.push(b'\t');
        push_decimal(&mut out, n);
        out.push(b'\n');
        if out.len() >= OUT_FLUSH {
            output.write_all(&out)?;
            out.clear();
        }
    }
    output.write_all(&out)?;
    output.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: fn(&[u8], &mut Vec<u8>) -> io::Result<()>, input: &str) -> String {
        let mut out = Vec::new();
        f(input.as_bytes(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// A reader that returns at most 1000 bytes per read, like a slow pipe.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(1000);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn tokenize_lowercases_and_splits_like_the_awk_tokenizer() {
        let out = run(|i, o| tokenize(i, o), "Hello, World! it's 42\n\n--x--\nlast");
        assert_eq!(out, "hello\nworld\nit's\n42\nx\nlast\n");
    }

    #[test]
    fn count_sums_plain_and_combined_lines_and_sorts_by_bytes() {
        let out = run(|i, o| count(i, o), "b\na\nb\na\t5\nZ\n\nb\tx\n");
        assert_eq!(out, "Z\t1\na\t6\nb\t2\nb\tx\t1\n");
        // Words of 15 bytes and fewer are packed, longer ones are not: both count.
        let long = "abcdefghijklmnop";
        let input = format!("{long}\n{}\n{long}\t2\nabcdefghijklmno\n{}\n", &long[..15], &long[..15]);
        let out = run(|i, o| count(i, o), &input);
        assert_eq!(out, format!("{}\t3\n{long}\t3\n", &long[..15]));
    }

    #[test]
    fn combine_then_count_equals_count() {
        let text: String = (0..5000).map(|i| format!("w{} W{} x\n", i % 37, i % 11)).collect();
        let mut plain = Vec::new();
        tokenize(text.as_bytes(), &mut plain).unwrap();
        let mut direct = Vec::new();
        count(&plain[..], &mut direct).unwrap();
        // Reads of 1000 bytes and 1-byte blocks: many partial counts per word.
        let mut combined = Vec::new();
        tokenize_combine(Trickle(text.as_bytes()), &mut combined, 1).unwrap();
        assert!(combined.len() > 37 * 2 * 10, "expected many blocks");
        let mut summed = Vec::new();
        count(&combined[..], &mut summed).unwrap();
        assert_eq!(String::from_utf8(summed).unwrap(), String::from_utf8(direct).unwrap());
    }
}

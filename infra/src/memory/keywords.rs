//! Each novel's keyword postings held in process, for BM25 keyword search in the SQL
//! memory index (SQLite and PostgreSQL alike). The words are the ones [`super::segment`]
//! cut when the record was written (its `keywords` column); a novel's are loaded on first
//! search and reloaded when its memory version moved, like its vectors.
//!
//! Why not the database's own full-text search: at 100,000 passages in one novel, SQLite
//! FTS5 ranks every match with `bm25()` before the story-time filter can drop it — a
//! three-word question took 134 ms at the median, and merely counting the matches of the
//! novel's scope token 16 ms. Here a question walks only the postings of its own words.
//!
//! The statistics (how many records, how many hold a word, their mean length) are those
//! of the records the question may see — of the kinds asked for, established before the
//! chapter asked about — so what later chapters write never changes how an "as of chapter
//! N" question ranks, and one tenant's text never weighs in another's.

use super::resident::{Resident, visible};
use std::collections::HashMap;
use uuid::Uuid;
use znovel_domain::model::MemoryKind;

/// BM25 term-frequency saturation (SQLite FTS5's and Lucene's default).
const K1: f64 = 1.2;
/// BM25 length normalisation.
const B: f64 = 0.75;

/// One record holding a word: its row and how often the word occurs in it.
#[derive(Debug, Clone, Copy)]
struct Posting {
    row: u32,
    tf: u32,
}

/// One novel's keyword postings.
#[derive(Debug)]
pub struct NovelKeywords {
    /// The novel's memory version they were loaded at.
    pub version: i64,
    ids: Vec<Uuid>,
    kinds: Vec<MemoryKind>,
    seqs: Vec<Option<i32>>,
    /// Each record's length in words.
    lens: Vec<u32>,
    postings: HashMap<Box<str>, Vec<Posting>>,
    bytes: usize,
}

impl NovelKeywords {
    /// Builds the postings from (id, kind, seq, keywords) rows, `keywords` being the
    /// record's words joined by spaces.
    pub fn new(version: i64, rows: Vec<(Uuid, MemoryKind, Option<i32>, String)>) -> Self {
        let mut out = Self {
            version,
            ids: Vec::with_capacity(rows.len()),
            kinds: Vec::with_capacity(rows.len()),
            seqs: Vec::with_capacity(rows.len()),
            lens: Vec::with_capacity(rows.len()),
            postings: HashMap::new(),
            bytes: 0,
        };
        let mut counts: HashMap<&str, u32> = HashMap::new();
        for (row, (id, kind, seq, keywords)) in rows.iter().enumerate() {
            counts.clear();
            let mut len = 0u32;
            for word in keywords.split(' ').filter(|w| !w.is_empty()) {
                *counts.entry(word).or_default() += 1;
                len += 1;
            }
            for (word, tf) in &counts {
                let posting = Posting {
                    row: row as u32,
                    tf: *tf,
                };
                match out.postings.get_mut(*word) {
                    Some(list) => list.push(posting),
                    None => {
                        out.postings.insert((*word).into(), vec![posting]);
                    }
                }
            }
            out.ids.push(*id);
            out.kinds.push(*kind);
            out.seqs.push(*seq);
            out.lens.push(len);
        }
        out.bytes = out.ids.len() * (16 + 4 + 8 + 4)
            + out
                .postings
                .iter()
                .map(|(w, p)| w.len() + 64 + p.capacity() * std::mem::size_of::<Posting>())
                .sum::<usize>();
        out
    }

    /// Whether row `i` passes the story-time and kind filter.
    fn passes(&self, i: usize, before: Option<i32>, kinds: &[MemoryKind]) -> bool {
        visible(self.seqs[i], self.kinds[i], before, kinds)
    }

    /// The `k` records best matching any of `words` by BM25 among those with
    /// `seq < before` (or no seq) and of `kinds` (empty: all), best first, ties by id.
    /// A record matching none of the words is not returned.
    pub fn search(
        &self,
        words: &[String],
        before: Option<i32>,
        kinds: &[MemoryKind],
        k: usize,
    ) -> Vec<(Uuid, f64)> {
        let lists: Vec<&Vec<Posting>> = words
            .iter()
            .filter_map(|w| self.postings.get(w.as_str()))
            .collect();
        if lists.is_empty() || k == 0 {
            return Vec::new();
        }
        // The collection the question may see.
        let (mut n, mut total_len) = (0u64, 0u64);
        for i in 0..self.ids.len() {
            if self.passes(i, before, kinds) {
                n += 1;
                total_len += u64::from(self.lens[i]);
            }
        }
        if n == 0 {
            return Vec::new();
        }
        let avg_len = (total_len as f64 / n as f64).max(1.0);
        let mut scores: Vec<f64> = vec![0.0; self.ids.len()];
        let mut touched: Vec<u32> = Vec::new();
        let mut seen: Vec<Posting> = Vec::new();
        for list in lists {
            seen.clear();
            seen.extend(
                list.iter()
                    .filter(|p| self.passes(p.row as usize, before, kinds)),
            );
            if seen.is_empty() {
                continue;
            }
            let df = seen.len() as f64;
            // As FTS5: a word in more than half the records still counts, a little.
            let idf = (((n as f64 - df + 0.5) / (df + 0.5)).ln()).max(1e-6);
            for p in &seen {
                let row = p.row as usize;
                let tf = f64::from(p.tf);
                let norm = K1 * (1.0 - B + B * f64::from(self.lens[row]) / avg_len);
                if scores[row] == 0.0 {
                    touched.push(p.row);
                }
                scores[row] += idf * tf * (K1 + 1.0) / (tf + norm);
            }
        }
        let by_rank = |a: &u32, b: &u32| {
            let (a, b) = (*a as usize, *b as usize);
            scores[b]
                .total_cmp(&scores[a])
                .then(self.ids[a].cmp(&self.ids[b]))
        };
        if touched.len() > k {
            touched.select_nth_unstable_by(k - 1, by_rank);
            touched.truncate(k);
        }
        touched.sort_unstable_by(by_rank);
        touched
            .into_iter()
            .map(|r| (self.ids[r as usize], scores[r as usize]))
            .collect()
    }
}

impl Resident for NovelKeywords {
    fn version(&self) -> i64 {
        self.version
    }

    fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: u128, seq: Option<i32>, words: &str) -> (Uuid, MemoryKind, Option<i32>, String) {
        (Uuid::from_u128(i), MemoryKind::Passage, seq, words.into())
    }

    fn ids(hits: &[(Uuid, f64)]) -> Vec<u128> {
        hits.iter().map(|h| h.0.as_u128()).collect()
    }

    #[test]
    fn rarer_words_and_more_occurrences_rank_higher() {
        let k = NovelKeywords::new(
            1,
            vec![
                row(1, Some(1), "lamp storm harbour"),
                row(2, Some(2), "lamp lamp lamp harbour"),
                row(3, Some(3), "ferret harbour"),
                row(4, Some(4), "harbour gate"),
                row(5, None, "nothing here"),
            ],
        );
        let words = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        // "ferret" is in one record, "harbour" in four: the ferret record wins.
        assert_eq!(
            ids(&k.search(&words("ferret harbour"), None, &[], 1)),
            vec![3]
        );
        // Three lamps beat one.
        assert_eq!(ids(&k.search(&words("lamp"), None, &[], 2)), vec![2, 1]);
        // No word known: nothing; records matching no word are never returned.
        assert!(k.search(&words("dragon"), None, &[], 5).is_empty());
        assert_eq!(k.search(&words("lamp gate"), None, &[], 10).len(), 3);
    }

    #[test]
    fn what_later_chapters_write_changes_neither_the_hits_nor_their_order() {
        let early = vec![
            row(1, Some(1), "mara lamp"),
            row(2, Some(2), "mara harbour harbour"),
            row(3, Some(3), "lamp harbour"),
        ];
        let mut later = early.clone();
        later.push(row(4, Some(5), "lamp lamp lamp mara"));
        later.push(row(5, Some(6), "harbour harbour harbour harbour"));
        let words = vec!["mara".to_owned(), "lamp".to_owned(), "harbour".to_owned()];
        let a = NovelKeywords::new(1, early).search(&words, Some(4), &[], 10);
        let b = NovelKeywords::new(2, later).search(&words, Some(4), &[], 10);
        assert_eq!(a, b, "same hits, same scores as of chapter 4");
        assert_eq!(a.len(), 3);
    }

    #[test]
    fn kinds_filter_and_ties_by_id() {
        let mut rows = vec![row(2, None, "lamp"), row(1, None, "lamp")];
        rows.push((Uuid::from_u128(3), MemoryKind::Entity, None, "lamp".into()));
        let k = NovelKeywords::new(1, rows);
        let lamp = vec!["lamp".to_owned()];
        assert_eq!(ids(&k.search(&lamp, None, &[], 10)), vec![1, 2, 3]);
        assert_eq!(
            ids(&k.search(&lamp, None, &[MemoryKind::Entity], 10)),
            vec![3]
        );
        assert_eq!(ids(&k.search(&lamp, None, &[], 2)), vec![1, 2]);
    }
}

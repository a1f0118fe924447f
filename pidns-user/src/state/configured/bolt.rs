//! BoltDB files (Podman 4's `bolt_state.db`, containerd's `meta.db`), read
//! through `bolt-lite` from a private copy: the runtime holds the file open
//! and may be writing it, and Bolt's readers take a shared `flock` that
//! would stall the runtime's next write. The copy is read in one pass into
//! memory and the two meta pages are checked (FNV-1a, as bbolt does) before
//! the parser sees them, so a meta page torn mid-write is never chosen.
//! Whatever the parser makes of a corrupt tree ends in an error, never a
//! panic that would end the scan.

use std::{
    io::{Read as _, Write as _},
    panic::{AssertUnwindSafe, catch_unwind},
    path::Path,
};

pub use bolt_lite::{Bucket, Tx};

/// The most read of one database.
const MAX_DB: u64 = 512 * 1024 * 1024;
const META_OFFSET: usize = 16;
const META_LEN: usize = 56;
const MAGIC: u32 = 0xED0C_DAED;

/// A database as it was when copied.
pub struct Snapshot {
    db: bolt_lite::Bolt,
}

impl Snapshot {
    /// Copies `path` and opens the copy: `Ok(None)` when there is no such
    /// file, `Err(why)` (with the path) when it cannot be read as Bolt.
    pub fn open(path: &Path) -> Result<Option<Snapshot>, String> {
        let why = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let f = match crate::procfs::open_regular(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(why(&e)),
        };
        let mut bytes = Vec::new();
        f.take(MAX_DB)
            .read_to_end(&mut bytes)
            .map_err(|e| why(&e))?;
        let valid = checked_metas(&mut bytes);
        if valid == 0 {
            return Err(why(
                &"no valid Bolt meta page (truncated, or not a Bolt database)",
            ));
        }
        tree_is_acyclic(&bytes).map_err(|e| why(&e))?;
        let mut copy = tempfile::NamedTempFile::new().map_err(|e| why(&e))?;
        copy.write_all(&bytes).map_err(|e| why(&e))?;
        let db = catch_unwind(|| bolt_lite::Bolt::open_ro(copy.path()))
            .map_err(|_| why(&"corrupt Bolt database"))?
            .map_err(|e| why(&e))?;
        Ok(Some(Snapshot { db }))
    }

    /// Runs `read` on the snapshot; `None` if the tree is too corrupt to walk.
    pub fn read<T>(&self, read: impl FnOnce(&Tx<'_>) -> T) -> Option<T> {
        let tx = self.db.begin().ok()?;
        catch_unwind(AssertUnwindSafe(|| read(&tx))).ok()
    }
}

/// Checks both meta pages and blanks the flags of one that fails (so the
/// parser takes the other); returns how many are valid.
fn checked_metas(bytes: &mut [u8]) -> usize {
    let Some(page_size) = u32_at(bytes, META_OFFSET + 8).map(|p| p as usize) else {
        return 0;
    };
    if !(1024..=65536).contains(&page_size) {
        return 0;
    }
    let mut valid = 0;
    for page in [0, page_size] {
        let meta = page + META_OFFSET;
        let ok = bytes.len() >= page + page_size
            && u32_at(bytes, meta) == Some(MAGIC)
            && u64_at(bytes, meta + META_LEN) == Some(fnv1a(&bytes[meta..meta + META_LEN]));
        if ok {
            valid += 1;
        } else if let Some(flags) = bytes.get_mut(page + 8..page + 10) {
            flags.fill(0);
        }
    }
    valid
}

/// Walks every page reachable from the meta pages' roots, as the parser
/// will (branch children, sub-buckets' roots), and refuses a database in
/// which a page is reached twice: the parser recurses without a bound, so
/// a cycle (a corrupt or crafted file) would overflow the stack.
fn tree_is_acyclic(b: &[u8]) -> Result<(), &'static str> {
    let page_size = u32_at(b, META_OFFSET + 8).ok_or("no page size")? as usize;
    let pages = b.len() / page_size;
    let mut seen = vec![false; pages];
    // The root the parser takes: the valid meta page's with the higher txid
    // (the older one's tree shares its unchanged pages with the newer one's).
    let root = [0, page_size]
        .into_iter()
        .filter(|&meta| u16_at(b, meta + 8).is_some_and(|f| f & 0x04 != 0))
        .filter_map(|meta| {
            let txid = u64_at(b, meta + META_OFFSET + 48)?;
            Some((txid, u64_at(b, meta + META_OFFSET + 16)?))
        })
        .max_by_key(|&(txid, _)| txid)
        .map(|(_, root)| root);
    let mut todo: Vec<u64> = root.into_iter().filter(|&r| r != 0).collect();
    while let Some(id) = todo.pop() {
        let i = usize::try_from(id).map_err(|_| "page id out of range")?;
        if i >= pages {
            continue; // the parser reports it as an invalid page
        }
        if std::mem::replace(&mut seen[i], true) {
            return Err("a page is reached twice (a cycle in the tree)");
        }
        let page = &b[i * page_size..];
        children(page, &mut todo);
    }
    Ok(())
}

/// The pages a page points at: a branch's children, a leaf's sub-buckets'
/// roots (and, inside an inline bucket, its own).
fn children(page: &[u8], todo: &mut Vec<u64>) {
    let (Some(flags), Some(count)) = (u16_at(page, 8), u16_at(page, 10)) else {
        return;
    };
    for e in 0..usize::from(count) {
        let at = 16 + e * 16;
        if flags & 0x01 != 0 {
            todo.extend(u64_at(page, at + 8));
        } else if flags & 0x02 != 0 && u32_at(page, at) == Some(1) {
            let (Some(pos), Some(ksize), Some(vsize)) = (
                u32_at(page, at + 4),
                u32_at(page, at + 8),
                u32_at(page, at + 12),
            ) else {
                return;
            };
            let start = at + pos as usize + ksize as usize;
            let Some(value) = page.get(start..start + vsize as usize) else {
                return;
            };
            match u64_at(value, 0) {
                Some(0) => children(value.get(16..).unwrap_or_default(), todo),
                Some(root) => todo.push(root),
                None => {}
            }
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The root bucket. Lookups go through [`bucket`] and [`get`], never
/// bolt-lite's own: its branch-page search picks the child after the right
/// one, so a key in a tree deeper than one leaf page is not found (seen on
/// Podman's `bolt_state.db` once its root spans pages). Iterating a
/// bucket's entries is right, and these look keys up that way.
pub fn root<'a>(tx: &'a Tx<'a>) -> Option<Bucket<'a>> {
    tx.bucket_path(&[])
}

/// The sub-bucket `name` of `b`.
pub fn bucket<'a>(b: &Bucket<'a>, name: &[u8]) -> Option<Bucket<'a>> {
    b.iter_buckets()
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The value of `key` in `b` (not a sub-bucket).
pub fn get(b: &Bucket<'_>, key: &[u8]) -> Option<Vec<u8>> {
    b.cursor()
        .ok()?
        .find(|e| e.key == key && e.flags & bolt_lite::BUCKET_VALUE_FLAG == 0)
        .map(|e| e.value)
}

/// The entries of a bucket that are buckets themselves, by name.
pub fn sub_buckets<'a>(b: &Bucket<'a>) -> Vec<(String, Bucket<'a>)> {
    b.iter_buckets()
        .into_iter()
        .filter_map(|(k, v)| Some((String::from_utf8(k).ok()?, v)))
        .collect()
}

#[cfg(test)]
pub(crate) mod testdb {
    //! A Bolt file written by hand, in the layout bbolt writes: two meta
    //! pages, a freelist, and one leaf page per bucket (inline buckets are
    //! not used), enough for fixtures.

    use super::*;

    pub const PAGE: usize = 4096;

    /// A bucket: its key/value pairs and its sub-buckets.
    #[derive(Default, Clone)]
    pub struct B {
        pub values: Vec<(Vec<u8>, Vec<u8>)>,
        pub buckets: Vec<(Vec<u8>, B)>,
        /// Written as a branch page over two leaf pages.
        pub split: bool,
    }

    impl B {
        pub fn val(mut self, k: &str, v: &[u8]) -> B {
            self.values.push((k.as_bytes().to_vec(), v.to_vec()));
            self
        }
        pub fn bucket(mut self, k: &str, b: B) -> B {
            self.buckets.push((k.as_bytes().to_vec(), b));
            self
        }
        pub fn split(mut self) -> B {
            self.split = true;
            self
        }
    }

    /// A branch page over two leaves, each half of `b`'s keys.
    fn write_split(b: &B, pages: &mut Vec<Vec<u8>>) -> u64 {
        let at = pages.len();
        pages.push(Vec::new());
        let mut keys: Vec<&[u8]> = b.values.iter().map(|(k, _)| k.as_slice()).collect();
        keys.extend(b.buckets.iter().map(|(k, _)| k.as_slice()));
        keys.sort();
        let mid = keys[keys.len() / 2].to_vec();
        let half = |low: bool| B {
            values: b
                .values
                .iter()
                .filter(|(k, _)| (*k < mid) == low)
                .cloned()
                .collect(),
            buckets: b
                .buckets
                .iter()
                .filter(|(k, _)| (*k < mid) == low)
                .cloned()
                .collect(),
            split: false,
        };
        let (lo, hi) = (write(&half(true), pages), write(&half(false), pages));
        let children = [(keys[0].to_vec(), lo), (mid.clone(), hi)];
        let mut p = header(at as u64, 0x01, 2, 0);
        let mut data_at = 16 + 2 * 16;
        for (i, (k, id)) in children.iter().enumerate() {
            let e = 16 + i * 16;
            p[e..e + 4].copy_from_slice(&((data_at - e) as u32).to_le_bytes());
            p[e + 4..e + 8].copy_from_slice(&(k.len() as u32).to_le_bytes());
            p[e + 8..e + 16].copy_from_slice(&id.to_le_bytes());
            p[data_at..data_at + k.len()].copy_from_slice(k);
            data_at += k.len();
        }
        pages[at] = p;
        at as u64
    }

    /// The database's bytes, the root bucket `root`.
    pub fn build(root: &B) -> Vec<u8> {
        let mut pages: Vec<Vec<u8>> = vec![Vec::new(), Vec::new(), header(2, 0x10, 0, 0)];
        let root_id = write(root, &mut pages);
        for (i, txid) in [(0u64, 1u64), (1, 2)] {
            let mut p = header(i, 0x04, 0, 0);
            let mut m = Vec::new();
            m.extend(MAGIC.to_le_bytes());
            m.extend(2u32.to_le_bytes());
            m.extend((PAGE as u32).to_le_bytes());
            m.extend(0u32.to_le_bytes());
            m.extend(root_id.to_le_bytes());
            m.extend(0u64.to_le_bytes());
            m.extend(2u64.to_le_bytes());
            m.extend((pages.len() as u64).to_le_bytes());
            m.extend(txid.to_le_bytes());
            let sum = fnv1a(&m);
            m.extend(sum.to_le_bytes());
            p[16..16 + m.len()].copy_from_slice(&m);
            pages[i as usize] = p;
        }
        pages.concat()
    }

    fn header(id: u64, flags: u16, count: u16, overflow: u32) -> Vec<u8> {
        let mut p = vec![0u8; PAGE];
        p[..8].copy_from_slice(&id.to_le_bytes());
        p[8..10].copy_from_slice(&flags.to_le_bytes());
        p[10..12].copy_from_slice(&count.to_le_bytes());
        p[12..16].copy_from_slice(&overflow.to_le_bytes());
        p
    }

    /// Writes bucket `b` as a leaf page (with its overflow) at the end, its
    /// sub-buckets after it; returns its page id.
    fn write(b: &B, pages: &mut Vec<Vec<u8>>) -> u64 {
        if b.split {
            return write_split(b, pages);
        }
        let data: usize = b
            .values
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
            + b.buckets.iter().map(|(k, _)| k.len() + 16).sum::<usize>();
        let count = b.values.len() + b.buckets.len();
        let overflow = (16 + count * 16 + data).div_ceil(PAGE) - 1;
        let at = pages.len();
        // the overflow pages' slots stay empty: this page's bytes cover them
        pages.extend(std::iter::repeat_n(Vec::new(), overflow + 1));
        let mut items: Vec<(u32, Vec<u8>, Vec<u8>)> = b
            .values
            .iter()
            .map(|(k, v)| (0u32, k.clone(), v.clone()))
            .collect();
        for (k, sub) in &b.buckets {
            let mut v = write(sub, pages).to_le_bytes().to_vec();
            v.extend(0u64.to_le_bytes());
            items.push((1, k.clone(), v));
        }
        items.sort_by(|a, b| a.1.cmp(&b.1));
        let mut p = header(at as u64, 0x02, count as u16, overflow as u32);
        p.resize(PAGE * (overflow + 1), 0);
        let mut data_at = 16 + count * 16;
        for (i, (flags, k, v)) in items.iter().enumerate() {
            let e = 16 + i * 16;
            p[e..e + 4].copy_from_slice(&flags.to_le_bytes());
            p[e + 4..e + 8].copy_from_slice(&((data_at - e) as u32).to_le_bytes());
            p[e + 8..e + 12].copy_from_slice(&(k.len() as u32).to_le_bytes());
            p[e + 12..e + 16].copy_from_slice(&(v.len() as u32).to_le_bytes());
            p[data_at..data_at + k.len()].copy_from_slice(k);
            p[data_at + k.len()..data_at + k.len() + v.len()].copy_from_slice(v);
            data_at += k.len() + v.len();
        }
        pages[at] = p;
        at as u64
    }
}

#[cfg(test)]
mod tests {
    use super::{testdb::*, *};

    fn snapshot(bytes: &[u8]) -> Result<Option<Snapshot>, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.db");
        std::fs::write(&p, bytes).unwrap();
        Snapshot::open(&p)
    }

    #[test]
    fn reads_nested_buckets() {
        let db = build(
            &B::default().bucket(
                "a",
                B::default()
                    .val("k", b"v")
                    .bucket("b", B::default().val("x", b"y")),
            ),
        );
        let s = snapshot(&db).unwrap().unwrap();
        let got = s
            .read(|tx| {
                let a = bucket(&root(tx)?, b"a")?;
                let b = bucket(&a, b"b")?;
                Some((get(&a, b"k")?, get(&b, b"x")?, sub_buckets(&a).len()))
            })
            .flatten();
        assert_eq!(got, Some((b"v".to_vec(), b"y".to_vec(), 1)));
    }

    #[test]
    fn a_torn_meta_page_is_never_chosen_and_a_truncated_file_is_an_error() {
        let db = build(&B::default().bucket("a", B::default().val("k", b"v")));
        let mut torn = db.clone();
        // the newer meta (page 1) torn mid-write: its txid changed, its checksum not
        torn[PAGE + 16 + 48] ^= 0xff;
        let s = snapshot(&torn).unwrap().unwrap();
        assert_eq!(
            s.read(|tx| get(&bucket(&root(tx)?, b"a")?, b"k")).flatten(),
            Some(b"v".to_vec())
        );
        let err = snapshot(&db[..100]).err().unwrap();
        assert!(err.contains("x.db"), "{err}");
        assert!(
            snapshot(&db[..PAGE * 3])
                .unwrap()
                .unwrap()
                .read(|tx| root(tx).and_then(|r| bucket(&r, b"a")).is_none())
                .unwrap_or(true)
        );
        assert!(snapshot(b"").is_err());
    }

    #[test]
    fn a_cycle_in_the_tree_is_refused_before_the_parser_recurses() {
        let mut db = build(&B::default().bucket("a", B::default().val("k", b"v")));
        // the root bucket's page (3) becomes a branch whose child is itself
        let root = 3 * PAGE;
        db[root + 8..root + 10].copy_from_slice(&0x01u16.to_le_bytes());
        db[root + 10..root + 12].copy_from_slice(&1u16.to_le_bytes());
        db[root + 16..root + 20].copy_from_slice(&16u32.to_le_bytes());
        db[root + 20..root + 24].copy_from_slice(&1u32.to_le_bytes());
        db[root + 24..root + 32].copy_from_slice(&3u64.to_le_bytes());
        let err = snapshot(&db).err().unwrap();
        assert!(err.contains("cycle"), "{err}");
    }

    #[test]
    fn keys_are_found_below_a_branch_page() {
        let tree = B::default()
            .bucket("a", B::default())
            .bucket("ctr", B::default().val("k", b"v"))
            .bucket("m", B::default())
            .bucket("z", B::default())
            .split();
        let s = snapshot(&build(&tree)).unwrap().unwrap();
        let got = s
            .read(|tx| get(&bucket(&root(tx)?, b"ctr")?, b"k"))
            .flatten();
        assert_eq!(got, Some(b"v".to_vec()));
        // bolt-lite's own lookup misses it: why pidns does not use it
        assert!(s.read(|tx| tx.bucket(b"ctr").is_none()).unwrap_or(false));
    }

    #[test]
    fn no_file_is_no_database() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            Snapshot::open(&dir.path().join("none.db"))
                .unwrap()
                .is_none()
        );
    }
}

//! SQLite databases (Podman ≥ 4.8's `db.sql`), read from a private copy:
//! the database and its write-ahead log are copied into a temporary
//! directory and the copy is opened (SQLite replays the log's committed
//! frames into it). The runtime's own files are never opened by SQLite, so
//! no lock of theirs is taken and no `-shm` file is created beside them.
//! (`immutable=1` on the original would skip the log, and miss everything
//! written since the last checkpoint.) A copy taken mid-write either
//! misses the transaction in flight (the log's checksums end it) or is an
//! error naming the file, never a panic.

use std::{
    io::Read as _,
    path::{Path, PathBuf},
};

use rusqlite::{Connection, OpenFlags};

/// The most read of one database file.
const MAX_DB: u64 = 512 * 1024 * 1024;

/// A copied database, open; the copy goes when it is dropped.
pub struct Copy {
    pub conn: Connection,
    _dir: tempfile::TempDir,
}

/// Copies `path` (and `path-wal`) and opens the copy: `Ok(None)` when there
/// is no such file.
pub fn open_copy(path: &Path) -> Result<Option<Copy>, String> {
    let why = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let Some(db) = read(path).map_err(|e| why(&e))? else {
        return Ok(None);
    };
    let dir = tempfile::tempdir().map_err(|e| why(&e))?;
    let copy = dir.path().join("db.sql");
    std::fs::write(&copy, db).map_err(|e| why(&e))?;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if let Some(log) = read(&PathBuf::from(wal)).map_err(|e| why(&e))? {
        std::fs::write(dir.path().join("db.sql-wal"), log).map_err(|e| why(&e))?;
    }
    let conn = Connection::open_with_flags(
        &copy,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| why(&e))?;
    // A malformed file fails here rather than on the first query.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| why(&e))?;
    Ok(Some(Copy { conn, _dir: dir }))
}

fn read(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let f = match crate::procfs::open_regular(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut buf = Vec::new();
    f.take(MAX_DB).read_to_end(&mut buf)?;
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_copy_with_its_log_and_leaves_the_original_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sql");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
                 CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('in the log');",
            )
            .unwrap();
        let before: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let copy = open_copy(&path).unwrap().unwrap();
        let v: String = copy
            .conn
            .query_row("SELECT v FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, "in the log", "the log's committed frames are read");
        let after: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(before, after, "nothing created beside the original");
        drop(writer);
    }

    #[test]
    fn a_truncated_database_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sql");
        let c = Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE t (v TEXT); INSERT INTO t VALUES (randomblob(9000));")
            .unwrap();
        drop(c);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..50]).unwrap();
        let err = open_copy(&path).err().unwrap();
        assert!(err.contains("db.sql"), "{err}");
        assert!(open_copy(&dir.path().join("none.sql")).unwrap().is_none());
    }
}

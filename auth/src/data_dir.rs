//! The permissions of the data directory and of the SQLite files in it: the directory is
//! created `0700` and every database file (with its `-wal` and `-shm`) is `0600`, because they
//! hold key digests and the documents of the store, which no other local user should read.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode of a data directory Portcullis creates.
pub const DIR_MODE: u32 = 0o700;

/// The mode of every SQLite file Portcullis creates or opens.
pub const FILE_MODE: u32 = 0o600;

/// The suffixes SQLite appends to a database's name for its side files in WAL mode.
const SIDE_FILES: [&str; 2] = ["-wal", "-shm"];

/// Creates `dir` (and missing parents) with mode `0700`. An existing directory is left as it
/// is, but a warning names it and the fix when group or others may read or enter it: changing
/// an operator's directory behind their back could break what else they keep there.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %dir.display(),
            mode = format_args!("{mode:04o}"),
            "the data directory is readable by other users; fix: chmod 700 {}",
            dir.display()
        );
    }
    Ok(())
}

/// Makes sure the database file `path` exists with mode `0600` before SQLite opens it, and
/// narrows an existing file and its `-wal`/`-shm` to `0600`. SQLite gives the side files it
/// creates later the mode of the main file, so they are born `0600` too.
pub fn prepare_file(path: &Path) -> io::Result<()> {
    // Never truncate: an existing database is opened as it is.
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)?;
    restrict(path)?;
    for suffix in SIDE_FILES {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = Path::new(&side);
        if side.exists() {
            restrict(side)?;
        }
    }
    Ok(())
}

/// Sets `path` to `0600` when it is anything else.
fn restrict(path: &Path) -> io::Result<()> {
    if std::fs::metadata(path)?.permissions().mode() & 0o777 != FILE_MODE {
        std::fs::set_permissions(path, Permissions::from_mode(FILE_MODE))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_the_directory_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        ensure_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn leaves_an_existing_directory_as_it_is() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), Permissions::from_mode(0o755)).unwrap();
        ensure_dir(tmp.path()).unwrap();
        assert_eq!(mode(tmp.path()), 0o755);
    }

    #[test]
    fn narrows_the_database_and_its_side_files_to_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("x.db");
        for name in ["x.db", "x.db-wal", "x.db-shm"] {
            let file = tmp.path().join(name);
            std::fs::write(&file, b"content").unwrap();
            std::fs::set_permissions(&file, Permissions::from_mode(0o644)).unwrap();
        }
        prepare_file(&db).unwrap();
        for name in ["x.db", "x.db-wal", "x.db-shm"] {
            assert_eq!(mode(&tmp.path().join(name)), 0o600, "{name}");
        }
        assert_eq!(std::fs::read(&db).unwrap(), b"content");
    }

    #[test]
    fn creates_a_missing_database_file_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("new.db");
        prepare_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(std::fs::read(&db).unwrap().len(), 0);
    }
}

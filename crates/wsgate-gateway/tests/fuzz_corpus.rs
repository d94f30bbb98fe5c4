//! The fuzz corpora as a regression suite: every file under `fuzz/corpus/<target>/` (the
//! hand-made seeds and what the fuzzer found worth keeping) goes through the same entry point
//! as its fuzz target, in the ordinary test run. A crash the fuzzer once found stays fixed.

use std::path::{Path, PathBuf};

use wsgate_gateway::fuzzing;

/// Fewer files than this means the corpus moved or was emptied, not that all is well.
const MIN_FILES: usize = 10;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).filter(|p| p.is_file()).collect();
    files.sort();
    assert!(files.len() >= MIN_FILES, "{} holds only {} files", dir.display(), files.len());
    files
}

/// Feeds every file to `entry`, naming the file whose input panics.
fn replay(target: &str, entry: fn(&[u8])) {
    for path in corpus(target) {
        let input = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        if std::panic::catch_unwind(|| entry(&input)).is_err() {
            panic!("fuzz/corpus/{target}/{} fails", path.file_name().unwrap_or_default().to_string_lossy());
        }
    }
}

#[test]
fn the_frame_scanner_corpus_passes() {
    replay("frame_scanner", fuzzing::frames);
}

#[test]
fn the_upgrade_request_corpus_passes() {
    replay("upgrade_request", fuzzing::upgrade_request);
}

#[test]
fn the_jwt_corpus_passes() {
    replay("jwt", fuzzing::jwt);
}

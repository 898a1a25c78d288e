//! Replays the fuzz corpora (`fuzz/corpus/<target>/`) through the fuzz targets in
//! `camgate::fuzzing`, so every test run checks the seeds, and every crash the fuzzer
//! found (saved there as a regression input), without cargo-afl.

use std::path::{Path, PathBuf};

use camgate::fuzzing::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

#[test]
fn every_fuzz_target_has_a_binary_and_a_corpus_that_passes() {
    for (name, target) in TARGETS {
        let binary = fuzz_dir().join("src/bin").join(format!("{name}.rs"));
        assert!(binary.is_file(), "no fuzz binary {}", binary.display());
        let corpus = fuzz_dir().join("corpus").join(name);
        let mut inputs: Vec<PathBuf> = std::fs::read_dir(&corpus)
            .unwrap_or_else(|e| panic!("{}: {e}", corpus.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "empty corpus for {name}");
        for input in inputs {
            let data = std::fs::read(&input).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name} fails on {}", input.display());
        }
    }
}

#[test]
fn fuzz_targets_take_any_prefix_of_the_seeds() {
    // Cheap extra coverage: every truncation of every seed (inputs cut anywhere).
    for (name, target) in TARGETS {
        for entry in std::fs::read_dir(fuzz_dir().join("corpus").join(name)).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            for end in 0..data.len() {
                target(&data[..end]);
            }
        }
    }
}

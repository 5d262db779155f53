//! Every config in `examples/` must validate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_core::config::Config;

#[test]
fn every_example_config_is_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Err(e) = Config::from_path(&path) {
                panic!("{} is invalid:\n{e}", path.display());
            }
            n += 1;
        }
    }
    assert!(n >= 2, "expected example configs in {}", dir.display());
}

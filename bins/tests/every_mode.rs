//! Every row of the mode table has its per-mode binary, as the original study had one program
//! per send path: a source file and a `[[bin]]` entry. A new mode without them fails here.

use sendpath_core::spec::Mode;
use std::path::Path;

#[test]
fn every_mode_has_its_binary() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    for m in Mode::ALL {
        let name = format!("sendpath-{m}");
        let src = dir.join("src/bin").join(format!("{name}.rs"));
        let text = std::fs::read_to_string(&src)
            .unwrap_or_else(|e| panic!("{m}: {} ({e})", src.display()));
        let variant = format!("{m:?}");
        assert!(
            text.contains(&format!(
                "sendpath_bins::main(sendpath_core::spec::Mode::{variant})"
            )),
            "{}: runs Mode::{variant}",
            src.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"\npath = \"src/bin/{name}.rs\"")),
            "bins/Cargo.toml has no [[bin]] {name}"
        );
    }
}

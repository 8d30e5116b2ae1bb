//! The README's option table is generated from `psyne::config::OPTIONS`, the
//! one place options are defined; this test fails when the two differ.
//! Refresh the table with:
//!
//! ```sh
//! PSYNE_BLESS=1 cargo test --test readme
//! ```

use psyne::config::{OptionSpec, OPTIONS};
use std::path::Path;

const HEAD: &str = "| option | schemes | values | meaning |\n|---|---|---|---|\n";

fn row(o: &OptionSpec) -> String {
    let schemes = if o.schemes.len() == 5 {
        "all".to_string()
    } else {
        o.schemes.join(", ")
    };
    let values = if o.values.contains(" | ") {
        let alts: Vec<String> = o.values.split(" | ").map(|v| format!("`{v}`")).collect();
        alts.join(" \\| ")
    } else {
        o.values.to_string()
    };
    format!("| `{}` | {schemes} | {values} | {} |\n", o.key, o.doc)
}

#[test]
fn readme_option_table_matches_the_options() {
    let fresh: String = HEAD.to_string() + &OPTIONS.iter().map(row).collect::<String>();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme.find(HEAD).expect("README.md has an option table");
    let len = readme[start..]
        .find("\n\n")
        .map_or(readme.len() - start, |n| n + 1);
    let committed = &readme[start..start + len];
    if std::env::var_os("PSYNE_BLESS").is_some_and(|v| !v.is_empty() && v != "0") {
        let updated = readme.replacen(committed, &fresh, 1);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert_eq!(
        committed, fresh,
        "README.md's option table differs from psyne::config::OPTIONS; \
         refresh it with PSYNE_BLESS=1 cargo test --test readme"
    );
}

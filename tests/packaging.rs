//! The repository's own packaging files: the root pyproject.toml (maturin) must take the
//! version from Cargo.toml, and must not look like a project compose-shard tests (it has no
//! `[tool.compose-shard]`, so running compose-shard in the checkout gets default settings).

use std::path::Path;

use compose_shard::pyproject::Settings;

fn root_pyproject() -> toml::Table {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pyproject.toml");
    std::fs::read_to_string(path).unwrap().parse().unwrap()
}

#[test]
fn repository_pyproject_gives_default_settings() {
    let settings = Settings::load(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    assert_eq!(settings, Settings::default());
}

#[test]
fn wheel_version_comes_from_cargo_toml_only() {
    let pyproject = root_pyproject();
    let project = pyproject["project"].as_table().unwrap();
    assert_eq!(project["name"].as_str(), Some(env!("CARGO_PKG_NAME")));
    assert!(
        !project.contains_key("version"),
        "the version is written in Cargo.toml only"
    );
    let dynamic: Vec<_> = project["dynamic"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(dynamic.contains(&"version"), "{dynamic:?}");
    let maturin = pyproject["tool"]["maturin"].as_table().unwrap();
    assert_eq!(maturin["bindings"].as_str(), Some("bin"));
    assert_eq!(
        pyproject["build-system"]["build-backend"].as_str(),
        Some("maturin")
    );
}

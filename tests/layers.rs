//! The layering check: no import cycles between the top-level modules of src/, nor
//! between the files of one folder (scripts/check_layers.py, which also states the
//! rule for what counts as an edge). The planted-cycle tests discover the modules and
//! edges they use from the script's `--edges` output, so they keep working while the
//! tree is reorganized.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script() -> PathBuf {
    crate_root().join("scripts").join("check_layers.py")
}

/// Runs the script in `dir` on `src` (relative to `dir`); returns its exit code and output.
fn check(dir: &Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new("python3")
        .arg(script())
        .args(extra)
        .arg("src")
        .current_dir(dir)
        .output()
        .expect("running python3 scripts/check_layers.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "--- check_layers.py {extra:?} src (in {}):\n{text}",
        dir.display()
    );
    (out.status.code().unwrap_or(-1), text)
}

#[derive(Debug, Clone)]
struct Edge {
    folder: String, // "src/" or "src/fuse/"
    from: String,
    to: String,
}

/// The `module crate::a::b src/a/b.rs` and `edge src/a/ x -> y ...` lines of `--edges`.
fn parse_edges(out: &str) -> (BTreeMap<String, String>, Vec<Edge>) {
    let mut modules = BTreeMap::new();
    let mut edges = Vec::new();
    for line in out.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["module", path, file] => {
                modules.insert(path.to_string(), file.to_string());
            }
            ["edge", folder, from, "->", to, ..] => edges.push(Edge {
                folder: folder.to_string(),
                from: from.to_string(),
                to: to.to_string(),
            }),
            _ => {}
        }
    }
    (modules, edges)
}

fn edge_set(out: &str) -> BTreeSet<(String, String, String)> {
    parse_edges(out)
        .1
        .into_iter()
        .map(|e| (e.folder, e.from, e.to))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// A copy of the crate's src/ (and Cargo.toml, for the crate's own name) in a tempdir.
fn copy_of_src() -> TempDir {
    let tmp = TempDir::new().unwrap();
    copy_dir(&crate_root().join("src"), &tmp.path().join("src"));
    fs::copy(
        crate_root().join("Cargo.toml"),
        tmp.path().join("Cargo.toml"),
    )
    .unwrap();
    tmp
}

/// The module path (`crate::a::b`) of node `node` of folder graph `folder` ("src/a/"),
/// and a file inside that unit: the unit's own module file if it has one, else the
/// first module file under it.
fn unit_module(modules: &BTreeMap<String, String>, folder: &str, node: &str) -> (String, String) {
    let inner = folder.trim_start_matches("src/").trim_end_matches('/');
    let mut path = String::from("crate");
    for seg in inner.split('/').filter(|s| !s.is_empty()) {
        path.push_str("::");
        path.push_str(seg);
    }
    if node != "mod" {
        path.push_str("::");
        path.push_str(node);
    }
    if let Some(file) = modules.get(&path) {
        return (path, file.clone());
    }
    let below = format!("{path}::");
    let (m, f) = modules
        .iter()
        .find(|(m, _)| m.starts_with(&below))
        .unwrap_or_else(|| panic!("no module file in unit {path}"));
    (m.clone(), f.clone())
}

/// Plants `use <target> as _planted_cycle;` at the end of `file` (relative to `dir`).
fn plant(dir: &Path, file: &str, target: &str) {
    let path = dir.join(file);
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "\n#[allow(unused_imports)]\nuse {target} as _planted_cycle;\n"
    ));
    fs::write(&path, text).unwrap();
}

/// Picks an existing edge X -> Y of the graphs `wanted` accepts whose reverse does not
/// exist, plants Y -> X, and checks that the script fails naming that cycle.
fn plant_reverse_of_an_edge(tmp: &TempDir, wanted: impl Fn(&Edge) -> bool) -> bool {
    let (code, out) = check(tmp.path(), &["--edges"]);
    assert!(
        code == 0 || code == 1,
        "check_layers.py failed to run:\n{out}"
    );
    let (modules, edges) = parse_edges(&out);
    let have = edge_set(&out);
    let candidates: Vec<&Edge> = edges
        .iter()
        .filter(|e| wanted(e))
        .filter(|e| !have.contains(&(e.folder.clone(), e.to.clone(), e.from.clone())))
        .collect();
    // Two real children if possible; an edge to or from the folder's own module else.
    let Some(edge) = candidates
        .iter()
        .find(|e| e.from != "mod" && e.to != "mod")
        .or_else(|| candidates.first())
    else {
        return false;
    };
    let (target, _) = unit_module(&modules, &edge.folder, &edge.from);
    let (_, file) = unit_module(&modules, &edge.folder, &edge.to);
    println!(
        "planting {} -> {} in {file}: use {target}",
        edge.to, edge.from
    );
    plant(tmp.path(), &file, &target);

    let (code, out) = check(tmp.path(), &[]);
    assert_eq!(code, 1, "a planted cycle must fail the check:\n{out}");
    let head = format!("cycle in {}: ", edge.folder);
    let there = format!("{} -> {}", edge.from, edge.to);
    let back = format!("{} -> {}", edge.to, edge.from);
    assert!(
        out.lines().any(|l| l.starts_with(&head)
            && l.contains(&there)
            && l.contains(&back)
            && l.contains(&format!("{file}:"))),
        "the output does not name the planted cycle {} <-> {} in {}:\n{out}",
        edge.from,
        edge.to,
        edge.folder
    );
    true
}

#[test]
fn the_crate_has_no_import_cycles() {
    let (code, out) = check(&crate_root(), &[]);
    assert_eq!(
        code, 0,
        "import cycles in src/ (see scripts/check_layers.py for the rule):\n{out}"
    );
    assert!(out.contains("no import cycles"), "{out}");
}

#[test]
fn a_planted_cycle_between_top_level_modules_fails() {
    let tmp = copy_of_src();
    let top = |e: &Edge| {
        e.folder == "src/" && !["lib", "main"].contains(&e.from.as_str()) && e.to != "lib"
    };
    assert!(
        plant_reverse_of_an_edge(&tmp, top),
        "no edge between two top-level modules to plant a cycle on"
    );
}

#[test]
fn a_planted_cycle_between_files_of_one_folder_fails() {
    let tmp = copy_of_src();
    if plant_reverse_of_an_edge(&tmp, |e| e.folder != "src/") {
        return;
    }
    // No folder has an edge yet: plant a cycle between two new files of one.
    let dir = tmp.path().join("src/planted");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("mod.rs"), "mod a;\nmod b;\n").unwrap();
    fs::write(dir.join("a.rs"), "use super::b::B;\npub struct A;\n").unwrap();
    fs::write(dir.join("b.rs"), "use super::a::A;\npub struct B;\n").unwrap();
    let (code, out) = check(tmp.path(), &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("cycle in src/planted/: a -> b -> a"), "{out}");
}

// ---------------------------------------------------------------- the script itself

/// A fake crate: `files` are (path under src/, contents).
fn fake(files: &[(&str, &str)]) -> TempDir {
    let tmp = TempDir::new().unwrap();
    fs::write(
        tmp.path().join("Cargo.toml"),
        "[package]\nname = \"fake-crate\"\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    for (path, text) in files {
        let path = tmp.path().join("src").join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    tmp
}

fn edges_of(tmp: &TempDir) -> (i32, String, BTreeSet<(String, String, String)>) {
    let (code, out) = check(tmp.path(), &["--edges"]);
    let edges = edge_set(&out);
    (code, out, edges)
}

fn e(folder: &str, from: &str, to: &str) -> (String, String, String) {
    (folder.into(), from.into(), to.into())
}

#[test]
fn script_reads_grouped_nested_and_inline_paths() {
    let tmp = fake(&[
        (
            "lib.rs",
            "pub mod a;\npub mod b;\npub mod c;\npub mod d;\npub mod e;\n",
        ),
        (
            "a.rs",
            "use crate::{\n    b::{self, X},\n    c::{Y, Z as W},\n};\n\
             pub fn f(o: crate::d::Opt) -> u8 { crate::e::g::<u8>(o) }\n",
        ),
        ("b.rs", "pub struct X;\n"),
        ("c.rs", "pub struct Y;\npub struct Z;\n"),
        ("d.rs", "pub struct Opt;\n"),
        ("e.rs", "pub fn g<T>(_: crate::d::Opt) -> u8 { 0 }\n"),
    ]);
    let (code, out, edges) = edges_of(&tmp);
    assert_eq!(code, 0, "{out}");
    for to in ["b", "c", "d", "e"] {
        assert!(
            edges.contains(&e("src/", "a", to)),
            "a -> {to} missing:\n{out}"
        );
    }
    assert!(edges.contains(&e("src/", "e", "d")), "{out}");
    assert!(out.contains("no import cycles"), "{out}");

    // A grouped, nested `pub use` back into a closes the cycle a -> c -> a.
    fs::write(
        tmp.path().join("src/c.rs"),
        "pub use crate::{d::{self as dd}, a::{f as _}};\npub struct Y;\npub struct Z;\n",
    )
    .unwrap();
    let (code, out) = check(tmp.path(), &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "cycle in src/: a -> c -> a (src/a.rs:3 uses crate::c::Y; src/c.rs:1 uses crate::a::f)"
        ),
        "{out}"
    );
}

#[test]
fn script_ignores_comments_and_strings() {
    let tmp = fake(&[
        ("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n"),
        (
            "a.rs",
            "// use crate::b;\n\
             /* crate::b::X /* nested crate::b */ still crate::b::X */\n\
             /// Like [`crate::b::X`].\n\
             //! crate::b\n\
             pub const S: &str = \"crate::b::X \\\" crate::b\";\n\
             pub const R: &str = r#\"crate::b \"quoted\" crate::b\"#;\n\
             pub const Q: char = '\"';\n\
             pub fn f<'a>(x: &'a str) -> &'a str { x }\n\
             pub(in crate::a) struct Private;\n\
             #[doc = \"crate::b\"]\n\
             pub use crate::c::C;\n",
        ),
        ("b.rs", "pub use crate::a::S;\npub struct X;\n"),
        ("c.rs", "pub struct C;\n"),
    ]);
    let (code, out, edges) = edges_of(&tmp);
    assert_eq!(code, 0, "a path in a comment or string is no edge:\n{out}");
    assert!(!edges.contains(&e("src/", "a", "b")), "{out}");
    assert!(edges.contains(&e("src/", "b", "a")), "{out}");
    // after the '"' char literal and the lifetimes, code is read again
    assert!(edges.contains(&e("src/", "a", "c")), "{out}");
}

#[test]
fn script_resolves_super_from_nested_folders() {
    let tmp = fake(&[
        ("lib.rs", "pub mod other;\npub mod top;\n"),
        ("other.rs", "pub struct Thing;\n"),
        ("top/mod.rs", "pub mod x;\npub mod y;\n"),
        ("top/x.rs", "use super::y::Y;\npub fn g() {}\n"),
        ("top/y.rs", "pub mod deep;\npub struct Y;\n"),
        (
            "top/y/deep.rs",
            "use super::super::super::other::Thing;\npub fn h() { super::super::x::g() }\n",
        ),
    ]);
    let (code, out, edges) = edges_of(&tmp);
    assert_eq!(code, 1, "{out}");
    assert!(edges.contains(&e("src/", "top", "other")), "{out}");
    assert!(edges.contains(&e("src/top/", "x", "y")), "{out}");
    assert!(edges.contains(&e("src/top/", "y", "x")), "{out}");
    assert!(!edges.iter().any(|(f, _, _)| f == "src/top/y/"), "{out}");
    assert!(
        out.contains("cycle in src/top/: x -> y -> x (src/top/x.rs:1 uses super::y::Y; src/top/y/deep.rs:2 uses super::super::x::g)"),
        "{out}"
    );
}

#[test]
fn script_sees_no_edge_in_inline_test_modules() {
    let tmp = fake(&[
        ("lib.rs", "pub mod a;\npub mod p;\npub struct Root;\n"),
        (
            "a.rs",
            "pub struct A;\n#[cfg(test)]\nmod tests {\n    use super::*;\n    use self::inner::*;\n    \
             mod inner { use super::super::A; }\n    #[test]\n    fn t() { let _ = super::A; }\n}\n",
        ),
        (
            "p/mod.rs",
            "pub mod child;\npub struct S;\n#[cfg(test)]\nmod tests {\n    use super::*;\n    \
             fn t() { let _ = super::S; }\n}\n",
        ),
        (
            "p/child.rs",
            "use super::S;\npub struct C(S);\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
        ),
    ]);
    let (code, out, edges) = edges_of(&tmp);
    assert_eq!(code, 0, "{out}");
    assert!(!edges.contains(&e("src/", "a", "lib")), "{out}");
    assert!(!edges.contains(&e("src/", "p", "lib")), "{out}");
    assert!(!edges.contains(&e("src/p/", "mod", "child")), "{out}");
    assert!(edges.contains(&e("src/p/", "child", "mod")), "{out}");
}

#[test]
fn script_treats_mod_rs_and_foo_rs_with_foo_folder_alike() {
    for own in ["foo/mod.rs", "foo.rs"] {
        let declares_only = fake(&[
            ("lib.rs", "pub mod foo;\npub mod q;\n"),
            (own, "pub mod bar;\npub struct F;\n"),
            ("foo/bar.rs", "use super::F;\npub struct B(F);\n"),
            ("q.rs", "pub fn f(_: crate::foo::bar::B) {}\n"),
        ]);
        let (code, out, edges) = edges_of(&declares_only);
        assert_eq!(code, 0, "`mod bar;` alone is no edge ({own}):\n{out}");
        assert!(edges.contains(&e("src/", "q", "foo")), "{own}:\n{out}");
        assert!(
            edges.contains(&e("src/foo/", "bar", "mod")),
            "{own}:\n{out}"
        );
        assert!(
            out.contains(&format!("module crate::foo src/{own}")),
            "{own}:\n{out}"
        );

        let re_exports = fake(&[
            ("lib.rs", "pub mod foo;\n"),
            (own, "mod bar;\npub use bar::B;\npub struct F;\n"),
            ("foo/bar.rs", "use super::F;\npub struct B(F);\n"),
        ]);
        let (code, out) = check(re_exports.path(), &[]);
        assert_eq!(code, 1, "{own}:\n{out}");
        assert!(
            out.contains(&format!(
                "cycle in src/foo/: bar -> mod -> bar (src/foo/bar.rs:1 uses super::F; src/{own}:2 uses bar::B)"
            )),
            "{own}:\n{out}"
        );
    }
}

#[test]
fn script_counts_uses_from_the_binary() {
    let tmp = fake(&[
        ("lib.rs", "pub mod a;\n"),
        ("a.rs", "pub fn run() {}\n"),
        ("main.rs", "use fake_crate::a;\nfn main() { a::run() }\n"),
    ]);
    let (code, out, edges) = edges_of(&tmp);
    assert_eq!(code, 0, "{out}");
    assert!(edges.contains(&e("src/", "main", "a")), "{out}");
    assert!(
        out.contains("layers: 2 modules, 1 edges, no import cycles"),
        "{out}"
    );
}

//! Fuzz targets for every parser that reads outside input: compose YAML with interpolation,
//! `.env`, JUnit XML, Cobertura XML, durations files, test lists and plan.json. Each target
//! runs for COMPOSE_SHARD_FUZZ_SECONDS (a short pass in `ci/test`, 10 minutes each in
//! `ci/fuzz`); see `fuzz_support` for seeds, bounds and replaying a saved failure. A target
//! passes when no input panics, runs over 5 s or allocates over 500 MB: errors are expected,
//! crashes and blow-ups are not.

#[path = "fuzz_support/mod.rs"]
mod fuzz_support;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use compose_shard::compose::{self, Isolation};
use compose_shard::config::{ComposeOptions, SplitBy};
use compose_shard::plan::{self, Durations, Plan};
use compose_shard::report::{junit_durations, merge_coverage, merge_junit, GroupResult};
use fuzz_support::{fuzz, replay, seeds, shared_corpus, CountingAllocator};
use proptest::prelude::*;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

thread_local! {
    /// A scratch folder per worker thread, for parsers that read files.
    static SCRATCH: RefCell<Option<tempfile::TempDir>> = const { RefCell::new(None) };
}

fn scratch() -> PathBuf {
    SCRATCH.with(|s| {
        s.borrow_mut()
            .get_or_insert_with(|| tempfile::tempdir().unwrap())
            .path()
            .to_path_buf()
    })
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Text made of `fragments` in any order: structure-aware input for a format.
fn pieces(fragments: &'static [&'static str], max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec(prop::sample::select(fragments), 0..max)
            .prop_map(|parts| parts.concat().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..1024),
    ]
}

const YAML: &[&str] = &[
    "services:\n",
    "  web:\n",
    "  db:\n",
    "    image: ${IMAGE:-redis}:${TAG-7}\n",
    "    image: $IMAGE\n",
    "    build: .\n",
    "    build: {context: ., args: [A=1]}\n",
    "    ports: [\"80:80\", 5432, \"127.0.0.1:1-3:1-3/udp\"]\n",
    "    expose: [\"90\"]\n",
    "    environment:\n      A: ${B:?need B}\n",
    "    environment: [A=1, B]\n",
    "    env_file: [missing.env]\n",
    "    extends: web\n",
    "    extends: {service: db}\n",
    "    depends_on: [db]\n",
    "    depends_on: {db: {condition: service_healthy}}\n",
    "    healthcheck: {test: [CMD, true], interval: 1m30s, retries: 3}\n",
    "    volumes: [\"./d:/d:ro\", \"v:/x\", \"/tmp\"]\n",
    "    command: sh -c 'x'\n",
    "    networks: [n]\n",
    "    profiles: [p]\n",
    "    deploy: {}\n",
    "    container_name: c\n",
    "volumes:\n  v: {}\n",
    "networks:\n  n: {name: x, external: true}\n",
    "x-a: &a {image: y}\n",
    "    <<: *a\n",
    "  web: !reset\n",
    "    ports: !override []\n",
    "name: proj\n",
    "include: [other.yaml]\n",
    "${",
    "$$",
    "}",
    "{",
    "[",
    "]",
    ": ",
    "- ",
    "? ",
    "&x ",
    "*x",
    "'",
    "\"",
    "\t",
    "# c\n",
    "---\n",
    "...\n",
    "\n",
    "    ",
    "~",
    "1e400",
    "0x1F",
    "!!binary aGk=",
    "\u{feff}",
    "\r\n",
];

const YAML_TOKENS: &[&str] = &[
    "${", "${A:-", "${A:?", "$$", "}", "[", "{", "&a ", "*a", "<<: ", "!reset ", "\n  ", ": ",
    "- ", "'", "\"",
];

fn check_compose(input: &[u8]) -> bool {
    let text = String::from_utf8_lossy(input);
    let env: HashMap<String, String> = [("IMAGE", "img"), ("B", "b")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let dir = scratch();
    let loaded = compose::load_from_str(
        &[("compose.yaml", &text)],
        &dir,
        &env,
        &ComposeOptions::default(),
    );
    let Ok(loaded) = loaded else {
        return false;
    };
    let test_service = loaded.project.services.keys().next().cloned();
    let isolation = Isolation {
        run_id: "fuzz".into(),
        group: 2,
        groups: 3,
        publish_ports: true,
        test_service,
    };
    let _ = compose::isolate(&loaded.project, &isolation);
    true
}

#[test]
fn fuzz_compose_yaml_and_interpolation() {
    if replay(check_compose) {
        return;
    }
    let seeds = seeds(&shared_corpus().join("compose"), &[".yml", ".yaml"]);
    assert!(!seeds.is_empty());
    fuzz(
        "compose",
        &seeds,
        YAML_TOKENS,
        pieces(YAML, 60),
        check_compose,
    );
}

const DOTENV: &[&str] = &[
    "A=1\n",
    "B=\"x${A}y\"\n",
    "C='raw $A'\n",
    "export D=2\n",
    "E=${UNSET:-d}\n",
    "F=${A:?msg}\n",
    "# c\n",
    "G=a # c\n",
    "H=\"multi\nline\"\n",
    "=\n",
    "I\n",
    "J= spaced \n",
    "\\",
    "\"",
    "'",
    "$",
    "${",
    "}",
    "\r\n",
    "K=${L:-${M:-${N}}}\n",
];

fn check_dotenv(input: &[u8]) -> bool {
    let dir = scratch();
    std::fs::write(dir.join(".env"), input).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  web:\n    image: x${A}\n    environment:\n      - B=${B}\n",
    )
    .unwrap();
    compose::load(&ComposeOptions::default(), &HashMap::new(), &dir).is_ok()
}

#[test]
fn fuzz_dotenv() {
    if replay(check_dotenv) {
        return;
    }
    let seeds: Vec<Vec<u8>> = DOTENV.iter().map(|s| s.as_bytes().to_vec()).collect();
    fuzz("dotenv", &seeds, DOTENV, pieces(DOTENV, 30), check_dotenv);
}

const JUNIT: &[&str] = &[
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>", "<testsuites>", "</testsuites>",
    "<testsuite name=\"pytest\" tests=\"2\" time=\"1.5\">", "</testsuite>",
    "<testcase classname=\"tests.test_a.C\" name=\"test_x[1-a]\" file=\"tests/test_a.py\" line=\"3\" time=\"0.25\">",
    "<testcase classname=\"t\" name=\"n\" time=\"1e308\"/>", "<testcase name=\"only\"/>",
    "</testcase>", "<failure message=\"boom &amp; &lt;\">trace</failure>", "<error message=\"e\"/>",
    "<skipped type=\"pytest.skip\" message=\"s\"/>", "<system-out>out</system-out>",
    "<properties><property name=\"a\" value=\"b\"/></properties>", "<![CDATA[x]]>", "<!-- c -->",
    "<!DOCTYPE x [<!ENTITY e \"e\">]>", "&e;", "&#x41;", "&#0;", "\u{0}", "\u{feff}", "<", ">",
    "\"", "=", " ", "\n",
];

fn check_junit(input: &[u8]) -> bool {
    let path = scratch().join("junit.xml");
    std::fs::write(&path, input).unwrap();
    let groups = vec![GroupResult {
        group: 1,
        groups: 1,
        junit: Some(path.clone()),
        ..Default::default()
    }];
    let merged = merge_junit(&groups, None, &mut std::io::sink()).is_ok();
    let durations = junit_durations(&path).is_ok();
    assert_eq!(
        merged, durations,
        "merge and durations accept the same files"
    );
    merged
}

/// Valid reports of the shapes pytest and coverage.py write, as seeds beside the samples of
/// the report tests.
const XML_SEEDS: &[&str] = &[
    "<?xml version=\"1.0\" encoding=\"utf-8\"?><testsuites name=\"pytest tests\"><testsuite name=\"pytest\" errors=\"0\" failures=\"0\" skipped=\"0\" tests=\"1\" time=\"0.1\" timestamp=\"2026-01-01T00:00:00\" hostname=\"h\"><testcase classname=\"tests.test_a\" name=\"test_x\" time=\"0.1\" /></testsuite></testsuites>",
    "<testsuite name=\"pytest\" tests=\"2\"><properties><property name=\"k\" value=\"v\"/></properties><testcase classname=\"a.b.C\" name=\"t[1]\" file=\"a/b.py\" line=\"7\" time=\"2\"><failure message=\"m\">E assert 1\n\na/b.py:9: AssertionError</failure><system-out>o</system-out><system-err>e</system-err></testcase><testcase classname=\"a.b\" name=\"u\" time=\"0\"><skipped type=\"pytest.skip\" message=\"s\">a/b.py:3: s</skipped></testcase><testcase classname=\"a.b\" name=\"u\" time=\"0.5\"><error message=\"teardown\"/></testcase></testsuite>",
    "<?xml version=\"1.0\" ?><coverage version=\"7.6\" timestamp=\"1\" lines-valid=\"3\" lines-covered=\"2\" line-rate=\"0.6667\" branches-valid=\"2\" branches-covered=\"1\" branch-rate=\"0.5\" complexity=\"0\"><sources><source>/app</source></sources><packages><package name=\"pkg\" line-rate=\"0.6667\" branch-rate=\"0.5\" complexity=\"0\"><classes><class name=\"m.py\" filename=\"pkg/m.py\" complexity=\"0\" line-rate=\"0.6667\" branch-rate=\"0.5\"><methods/><lines><line number=\"1\" hits=\"1\"/><line number=\"2\" hits=\"1\" branch=\"true\" condition-coverage=\"50% (1/2)\" missing-branches=\"3\"/><line number=\"3\" hits=\"0\"/></lines></class></classes></package></packages></coverage>",
];

fn xml_seeds() -> Vec<Vec<u8>> {
    let mut seeds = seeds(&fixtures(), &[".xml"]);
    seeds.extend(seeds_from_tests());
    seeds.extend(XML_SEEDS.iter().map(|s| s.as_bytes().to_vec()));
    seeds
}

/// The JUnit and Cobertura samples embedded in the report tests, as seeds.
fn seeds_from_tests() -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/report_hostile.rs"),
    )
    .unwrap();
    text.split("r#\"")
        .skip(1)
        .filter_map(|s| s.split("\"#").next())
        .filter(|s| s.contains("<?xml"))
        .map(|s| s.as_bytes().to_vec())
        .collect()
}

#[test]
fn fuzz_junit() {
    if replay(check_junit) {
        return;
    }
    fuzz("junit", &xml_seeds(), JUNIT, pieces(JUNIT, 40), check_junit);
}

const COBERTURA: &[&str] = &[
    "<?xml version=\"1.0\" ?>",
    "<coverage version=\"7\" timestamp=\"1\" lines-valid=\"4\" lines-covered=\"3\" line-rate=\"0.75\" branches-valid=\"2\" branches-covered=\"1\" branch-rate=\"0.5\" complexity=\"0\">",
    "</coverage>", "<sources><source>/src</source></sources>", "<packages>", "</packages>",
    "<package name=\".\" line-rate=\"1\" branch-rate=\"1\" complexity=\"0\">", "</package>",
    "<classes>", "</classes>", "<class name=\"m.py\" filename=\"m.py\" complexity=\"0\" line-rate=\"1\" branch-rate=\"1\">",
    "</class>", "<methods/>", "<lines>", "</lines>", "<line number=\"1\" hits=\"1\"/>",
    "<line number=\"2\" hits=\"0\" branch=\"true\" condition-coverage=\"50% (1/2)\" missing-branches=\"4,exit\"/>",
    "<line number=\"-1\" hits=\"99999999999999999999\"/>", "<!-- c -->", "&amp;", "<", "\"", " ",
];

fn check_cobertura(input: &[u8]) -> bool {
    let dir = scratch();
    let first = dir.join("a.xml");
    let second = dir.join("b.xml");
    std::fs::write(&first, input).unwrap();
    std::fs::write(&second, input).unwrap();
    merge_coverage(&[first, second], &mut std::io::sink()).is_ok()
}

#[test]
fn fuzz_cobertura() {
    if replay(check_cobertura) {
        return;
    }
    fuzz(
        "cobertura",
        &xml_seeds(),
        COBERTURA,
        pieces(COBERTURA, 40),
        check_cobertura,
    );
}

const DURATIONS: &[&str] = &[
    "{",
    "}",
    "\n    ",
    "\"tests/test_a.py::test_x\": 1.5",
    "\"t.py::C::t[1]\": 0.0001",
    ", ",
    "1e308",
    "-1",
    "NaN",
    "null",
    "\"\"",
    "[]",
    "\"\\u0000\"",
    "1e-320",
    "123456789012345678901234567890",
];

fn check_durations(input: &[u8]) -> bool {
    let text = String::from_utf8_lossy(input);
    let Ok(durations) = Durations::parse(&text) else {
        return false;
    };
    let back = Durations::parse(&durations.to_json()).expect("our own output parses");
    assert_eq!(back, durations, "durations survive a round trip");
    let tests: Vec<String> = durations.0.keys().take(200).cloned().collect();
    plan::split(&tests, &durations, 3, SplitBy::Class).expect("recorded durations plan");
    true
}

#[test]
fn fuzz_durations() {
    if replay(check_durations) {
        return;
    }
    let seeds = seeds(&shared_corpus().join("durations"), &[".test_durations"]);
    assert!(!seeds.is_empty());
    fuzz(
        "durations",
        &seeds,
        DURATIONS,
        pieces(DURATIONS, 40),
        check_durations,
    );
}

const TEST_LIST: &[&str] = &[
    "tests/test_a.py::test_x\n",
    "tests/test_a.py::C::test_y[a b-\u{e9}]\n",
    "t.py::t[::]\n",
    "3 tests collected in 0.01s\n",
    "no tests ran in 0.01s\n",
    "=== warnings summary ===\n",
    "==== ERRORS ====\n",
    "____ ERROR collecting t.py ____\n",
    "<Module t.py>\n",
    "t.py: 3\n",
    "\u{1b}[32m",
    "\u{1b}[0m",
    "  indented\n",
    "!!!! Interrupted !!!!\n",
    "\r\n",
    "\n",
];

fn check_test_list(input: &[u8]) -> bool {
    let text = String::from_utf8_lossy(input);
    let lenient = plan::parse_test_list(&text);
    let Ok(ids) = plan::parse_collect_output(&text) else {
        return false;
    };
    assert_eq!(
        ids, lenient,
        "strict and lenient parses agree when strict accepts"
    );
    let planned =
        plan::split(&ids, &Durations::default(), 4, SplitBy::Class).expect("a valid list plans");
    let count: usize = planned.groups.iter().map(|g| g.tests.len()).sum();
    assert_eq!(count, ids.len(), "every test is planned exactly once");
    let json = planned.to_json();
    let again = Plan::from_json(&json).expect("our own plan parses");
    assert_eq!(again.to_json(), json);
    true
}

#[test]
fn fuzz_test_list() {
    if replay(check_test_list) {
        return;
    }
    let seeds = seeds(&fixtures().join("collect"), &[".txt"]);
    assert!(!seeds.is_empty());
    fuzz(
        "test-list",
        &seeds,
        TEST_LIST,
        pieces(TEST_LIST, 60),
        check_test_list,
    );
}

const PLAN: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ", ",
    ": ",
    "\"version\"",
    "1",
    "2",
    "\"groups\"",
    "\"tests\"",
    "\"group\"",
    "\"estimated_seconds\"",
    "\"split_by\"",
    "\"class\"",
    "\"estimate\"",
    "\"rule\"",
    "\"median-of-file\"",
    "1e308",
    "-1",
    "null",
    "\"t.py::a\"",
    "18446744073709551616",
];

fn plan_seeds() -> Vec<Vec<u8>> {
    let ids: Vec<String> = (0..12)
        .map(|i| format!("tests/test_{}.py::t{i}", i % 3))
        .collect();
    [1, 3, 5]
        .iter()
        .map(|&g| {
            plan::split(&ids, &Durations::default(), g, SplitBy::Test)
                .unwrap()
                .to_json()
                .into_bytes()
        })
        .collect()
}

fn check_plan(input: &[u8]) -> bool {
    let text = String::from_utf8_lossy(input);
    let Ok(plan) = Plan::from_json(&text) else {
        return false;
    };
    let json = plan.to_json();
    let again = Plan::from_json(&json).expect("our own plan parses");
    assert_eq!(again.to_json(), json, "plans survive a round trip");
    let _ = plan::render_text(&again);
    let _ = plan::render_github_matrix(&again);
    true
}

#[test]
fn fuzz_plan_json() {
    if replay(check_plan) {
        return;
    }
    fuzz(
        "plan-json",
        &plan_seeds(),
        PLAN,
        pieces(PLAN, 60),
        check_plan,
    );
}

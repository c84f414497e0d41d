//! The JSON results file that `grade --json FILE` writes for CI.
//!
//! Each task entry is the suite's own `TaskReport` with the task's number,
//! level and title added, so a reader sees exactly what the suite decided.
//! `workbook/results.schema.json` (JSON Schema draft 2020-12) describes the
//! file; `schema_version` changes whenever a field changes meaning or goes.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use testkit::grading::MAX_TOTAL;
use testkit::report::TaskReport;

use crate::grade::Results;

/// Version of the results format; see `results.schema.json`.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// The whole results file.
#[derive(Debug, Serialize)]
pub(crate) struct ResultsFile<'a> {
    schema_version: u32,
    implementation: &'a str,
    tasks: Vec<TaskEntry<'a>>,
    total: u32,
    max_total: u32,
    band: BandEntry,
}

/// One task: its identity and the suite's report, flattened into one object.
#[derive(Debug, Serialize)]
struct TaskEntry<'a> {
    number: u32,
    level: &'a str,
    title: &'a str,
    #[serde(flatten)]
    report: &'a TaskReport,
}

/// The rubric band of the total.
#[derive(Debug, Serialize)]
struct BandEntry {
    min: u32,
    max: u32,
    advice: &'static str,
}

impl<'a> ResultsFile<'a> {
    /// Collects the file's content from grading results.
    pub(crate) fn new(results: &'a Results<'a>) -> ResultsFile<'a> {
        let band = results.band();
        ResultsFile {
            schema_version: SCHEMA_VERSION,
            implementation: &results.implementation,
            tasks: results
                .tasks
                .iter()
                .map(|graded| TaskEntry {
                    number: graded.task.number,
                    level: &graded.task.level,
                    title: &graded.task.title,
                    report: &graded.report,
                })
                .collect(),
            total: results.total(),
            max_total: MAX_TOTAL,
            band: BandEntry {
                min: band.min,
                max: band.max,
                advice: band.advice,
            },
        }
    }
}

/// Writes `results` as pretty-printed JSON to `path`.
///
/// # Errors
///
/// Returns an error naming `path` when it cannot be written.
pub(crate) fn write(path: &Path, results: &Results<'_>) -> Result<()> {
    let text = serde_json::to_string_pretty(&ResultsFile::new(results))
        .context("grading results failed to serialize")?;
    fs::write(path, text + "\n").with_context(|| {
        format!(
            "could not write the JSON results to {}; check that its folder exists and is \
             writable",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::discover::tests::sample_task;
    use crate::grade::Graded;
    use crate::table::tests::sample_report;

    const SCHEMA: &str = include_str!("../results.schema.json");

    fn sample_json() -> Value {
        let first = sample_task(1, "task01_basic", "A first broker");
        let second = sample_task(2, "task02_unsubscribe", "Unsubscribe");
        let mut broken = sample_report("task02_unsubscribe", None, "");
        broken.compile_error = Some("error[E0425]: cannot find value `x`".to_owned());
        let results = Results {
            implementation: "exercise".to_owned(),
            tasks: vec![
                Graded {
                    task: &first,
                    report: sample_report("task01_basic", Some("close_ends_receivers"), "boom"),
                },
                Graded {
                    task: &second,
                    report: broken,
                },
            ],
            all_tasks_graded: true,
        };
        serde_json::to_value(ResultsFile::new(&results)).expect("results serialize")
    }

    // Follows a "$ref" of the form "#/$defs/NAME" to its definition.
    fn resolve<'a>(schema: &'a Value, root: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference
                    .strip_prefix("#/$defs/")
                    .unwrap_or_else(|| panic!("unsupported $ref {reference}"));
                &root["$defs"][name]
            }
            None => schema,
        }
    }

    // Checks `value` against the object structure of `schema`: every
    // required key is present, no key is unknown where additionalProperties
    // is false, and the same holds for nested objects and array items.
    fn check_keys(value: &Value, schema: &Value, root: &Value, path: &str) {
        let schema = resolve(schema, root);
        if let (Some(object), Some(properties)) = (value.as_object(), schema.get("properties")) {
            for key in schema["required"].as_array().into_iter().flatten() {
                let key = key.as_str().expect("required lists hold strings");
                assert!(object.contains_key(key), "{path} lacks required key {key}");
            }
            if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
                for key in object.keys() {
                    assert!(
                        properties.get(key).is_some(),
                        "{path}.{key} is not in the schema's properties"
                    );
                }
            }
            for (key, item) in object {
                if let Some(property) = properties.get(key) {
                    check_keys(item, property, root, &format!("{path}.{key}"));
                }
            }
        }
        if let (Some(items), Some(item_schema)) = (value.as_array(), schema.get("items")) {
            for (index, item) in items.iter().enumerate() {
                check_keys(item, item_schema, root, &format!("{path}[{index}]"));
            }
        }
    }

    #[test]
    fn sample_matches_schema_keys() {
        let schema: Value = serde_json::from_str(SCHEMA).expect("the schema file is JSON");
        check_keys(&sample_json(), &schema, &schema, "$");
    }

    #[test]
    fn schema_requires_every_field_written() {
        // The reverse direction: a field the schema requires but the file
        // never writes would make every real output invalid.
        let schema: Value = serde_json::from_str(SCHEMA).expect("the schema file is JSON");
        let json = sample_json();
        let task_schema = resolve(&schema["properties"]["tasks"]["items"], &schema);
        let task = json["tasks"][0].as_object().expect("a task is an object");
        let required: Vec<&str> = task_schema["required"]
            .as_array()
            .expect("the task schema lists required keys")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut written: Vec<&str> = task.keys().map(String::as_str).collect();
        let mut expected = required.clone();
        written.sort_unstable();
        expected.sort_unstable();
        assert_eq!(written, expected);
    }

    #[test]
    fn totals_and_band_are_written() {
        let json = sample_json();
        assert_eq!(json["schema_version"], 1);
        assert_eq!(json["implementation"], "exercise");
        assert_eq!(json["total"], 2);
        assert_eq!(json["max_total"], 45);
        assert_eq!(json["band"]["min"], 0);
        assert_eq!(json["band"]["max"], 15);
        assert_eq!(json["tasks"][0]["number"], 1);
        assert_eq!(json["tasks"][0]["task"], "task01_basic");
        assert_eq!(json["tasks"][0]["checks"][1]["outcome"], "failed");
        assert!(json["tasks"][1]["compile_error"].is_string());
    }
}

//! The README's "Validation policies" section documents every validation
//! setting with its default, and every rule an issue can name, so the
//! operators' page cannot drift from the code.

use rostersync_core::{Rule, ValidationPolicy};

fn section() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("the README is at the workspace root");
    let start = readme
        .find("## Validation policies")
        .expect("the README has a \"Validation policies\" section");
    let rest = &readme[start + 3..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    rest[..end].to_string()
}

#[test]
fn every_setting_is_documented_with_its_default() {
    let section = section();
    let serde_json::Value::Object(defaults) =
        serde_json::to_value(ValidationPolicy::default()).unwrap()
    else {
        panic!("the policy serialises as an object");
    };
    for (setting, default) in defaults {
        let row = format!("| `{setting}` | `{default}` |");
        assert!(
            section.contains(&row),
            "the README's validation table lacks the row starting {row}"
        );
    }
}

#[test]
fn every_rule_an_issue_names_is_documented() {
    let section = section();
    for rule in Rule::ALL {
        assert!(
            section.contains(&format!("`{}`", rule.name())),
            "the README's validation section does not name the rule {}",
            rule.name()
        );
    }
}

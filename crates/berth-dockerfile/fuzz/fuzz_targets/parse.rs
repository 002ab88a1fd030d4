//! Parser, typed instructions, planning, lint, outline and rendering must
//! never panic, whatever the bytes.
#![no_main]

use berth_dockerfile::{LintOptions, PlanOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(df) = berth_dockerfile::parse(data) {
        let _ = df.dump();
        for n in &df.nodes {
            let _ = berth_dockerfile::parse_instruction(n);
        }
    }
    let src = String::from_utf8_lossy(data);
    match berth_dockerfile::plan(data, &PlanOptions::default()) {
        Ok(p) => {
            let _ = p.external_images();
        }
        Err(e) => {
            let _ = berth_dockerfile::render_error(&e, &src, "Dockerfile");
        }
    }
    let r = berth_dockerfile::lint(data, &LintOptions { ignore_patterns: Some(vec!["*.md".into()]), ..Default::default() });
    let _ = berth_dockerfile::format_lint(&r, &src, "Dockerfile");
    if let Ok(o) = berth_dockerfile::outline(data, &PlanOptions::default()) {
        let _ = berth_dockerfile::format_outline(&o);
    }
    if let Ok(t) = berth_dockerfile::targets(data) {
        let _ = berth_dockerfile::format_targets(&t);
    }
    let _ = berth_dockerfile::parse_trigger(&src);
});

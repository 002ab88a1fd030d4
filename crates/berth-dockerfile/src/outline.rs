//! `--print=outline` and `--print=targets` (BuildKit's outline and
//! targets subrequests, printed like `docker buildx build --print=…`).

use serde::Serialize;

use crate::error::{LineRange, Result};
use crate::instructions::{Instruction, Mount};
use crate::plan::{PlanOptions, Platform, parse_dockerfile, plan_parsed};
use crate::shell::Lexer;

/// A build argument that affects the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutlineArg {
    pub name: String,
    pub value: Option<String>,
    pub description: String,
    pub range: LineRange,
}

/// A secret or SSH id used by `RUN --mount`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutlineRequirement {
    pub name: String,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outline {
    pub name: String,
    pub description: String,
    pub args: Vec<OutlineArg>,
    pub secrets: Vec<OutlineRequirement>,
    pub ssh: Vec<OutlineRequirement>,
}

/// A stage as listed by `--print=targets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub name: String,
    pub description: String,
    pub default: bool,
    /// The FROM image as written.
    pub base: String,
    pub platform: Option<String>,
    pub range: LineRange,
}

fn is_builtin(name: &str) -> bool {
    matches!(
        name,
        "BUILDPLATFORM"
            | "BUILDOS"
            | "BUILDOSVERSION"
            | "TARGETOSVERSION"
            | "BUILDARCH"
            | "BUILDVARIANT"
            | "TARGETPLATFORM"
            | "TARGETOS"
            | "TARGETARCH"
            | "TARGETVARIANT"
            | "TARGETSTAGE"
    ) || name.starts_with("BUILDKIT_")
}

/// The outline of the build for `opts.target` (default: last stage).
pub fn outline(source: &[u8], opts: &PlanOptions) -> Result<Outline> {
    let parsed = parse_dockerfile(source)?;
    let plan = plan_parsed(&parsed, opts)?;
    let mut args: Vec<OutlineArg> = Vec::new();
    let push = |a: OutlineArg, args: &mut Vec<OutlineArg>| {
        if !is_builtin(&a.name) && !args.iter().any(|x| x.name == a.name) {
            args.push(a);
        }
    };
    // Global ARGs used by the needed FROM lines or re-declared in a stage.
    let lex = Lexer::new(parsed.dockerfile.escape);
    let global: Vec<(String, String)> =
        plan.meta_args.iter().filter_map(|m| Some((m.name.clone(), m.value.clone()?))).collect();
    let mut used_meta: Vec<String> = Vec::new();
    for st in &plan.stages {
        if let Instruction::From(f) = &parsed.stages[st.index].from.instruction {
            for w in std::iter::once(&f.image).chain(f.platform.iter()) {
                if let Ok(p) = lex.process(w, &global) {
                    used_meta.extend(p.matched);
                }
            }
        }
        for step in &st.steps {
            if let Instruction::Arg { args } = &step.command.instruction {
                for a in args {
                    used_meta.push(a.name.clone());
                }
            }
        }
    }
    for m in &plan.meta_args {
        if used_meta.contains(&m.name) {
            push(
                OutlineArg {
                    name: m.name.clone(),
                    value: m.value.clone(),
                    description: m.description.clone(),
                    range: m.range,
                },
                &mut args,
            );
        }
    }
    let mut secrets: Vec<OutlineRequirement> = Vec::new();
    let mut ssh: Vec<OutlineRequirement> = Vec::new();
    let add_req = |list: &mut Vec<OutlineRequirement>, id: &str, required: bool| {
        if let Some(e) = list.iter_mut().find(|e| e.name == id) {
            e.required |= required;
        } else {
            list.push(OutlineRequirement { name: id.to_string(), required });
        }
    };
    for st in &plan.stages {
        for step in &st.steps {
            match &step.command.instruction {
                Instruction::Arg { args: defs } => {
                    for a in defs {
                        push(
                            OutlineArg {
                                name: a.name.clone(),
                                value: a.default.clone(),
                                description: a.description.clone(),
                                range: step.command.range,
                            },
                            &mut args,
                        );
                    }
                }
                Instruction::Run(r) => {
                    for m in &r.mounts {
                        match m {
                            Mount::Secret { id, required, .. } => add_req(&mut secrets, id, *required),
                            Mount::Ssh { id, required, .. } => add_req(&mut ssh, id, *required),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }
    args.sort_by_key(|a| a.range.start);
    let target = plan.stage(plan.target);
    Ok(Outline {
        name: target.and_then(|t| t.name.clone()).unwrap_or_default(),
        description: target.map(|t| t.description.clone()).unwrap_or_default(),
        args,
        secrets,
        ssh,
    })
}

/// All stages, for `--print=targets`.
pub fn targets(source: &[u8]) -> Result<Vec<Target>> {
    let parsed = parse_dockerfile(source)?;
    let n = parsed.stages.len();
    Ok(parsed
        .stages
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match &s.from.instruction {
            Instruction::From(f) => Some(Target {
                name: f.name.clone(),
                description: f.description.clone(),
                default: i + 1 == n,
                base: f.image.clone(),
                platform: f.platform.clone(),
                range: s.from.range,
            }),
            _ => None,
        })
        .collect())
}

/// Go `text/tabwriter` with minwidth 0, padding `pad`, padchar ' ':
/// every row has the same number of tab-terminated cells plus trailing
/// text.
fn tabwrite(rows: &[Vec<String>], pad: usize) -> String {
    let ncols = rows.iter().map(|r| r.len().saturating_sub(1)).max().unwrap_or(0);
    let mut widths = vec![0; ncols];
    for r in rows {
        for (i, c) in r.iter().take(r.len().saturating_sub(1)).enumerate() {
            widths[i] = widths[i].max(c.chars().count() + pad);
        }
    }
    let mut out = String::new();
    for r in rows {
        let last = r.len().saturating_sub(1);
        for (i, c) in r.iter().enumerate() {
            out.push_str(c);
            if i < last {
                out.push_str(&" ".repeat(widths[i] - c.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

/// Prints an outline like `docker buildx build --print=outline`.
pub fn format_outline(o: &Outline) -> String {
    let mut out = String::new();
    if !o.name.is_empty() || !o.description.is_empty() {
        let mut rows = Vec::new();
        if !o.name.is_empty() {
            rows.push(vec!["TARGET:".to_string(), o.name.clone()]);
        }
        if !o.description.is_empty() {
            rows.push(vec!["DESCRIPTION:".to_string(), o.description.clone()]);
        }
        out.push_str(&tabwrite(&rows, 1));
        out.push('\n');
    }
    if !o.args.is_empty() {
        let mut rows = vec![vec!["BUILD ARG".to_string(), "VALUE".to_string(), "DESCRIPTION".to_string()]];
        for a in &o.args {
            rows.push(vec![a.name.clone(), a.value.clone().unwrap_or_default(), a.description.clone()]);
        }
        out.push_str(&tabwrite(&rows, 3));
        out.push('\n');
    }
    for (title, list) in [("SECRET", &o.secrets), ("SSH", &o.ssh)] {
        if !list.is_empty() {
            let mut rows = vec![vec![title.to_string(), "REQUIRED".to_string()]];
            for s in list {
                rows.push(vec![s.name.clone(), s.required.to_string()]);
            }
            out.push_str(&tabwrite(&rows, 3));
            out.push('\n');
        }
    }
    out
}

/// Prints targets like `docker buildx build --print=targets`.
pub fn format_targets(ts: &[Target]) -> String {
    let mut rows = vec![vec!["TARGET".to_string(), "DESCRIPTION".to_string()]];
    for t in ts {
        let name = if t.name.is_empty() && t.default {
            "(default)".to_string()
        } else if t.default {
            format!("{} (default)", t.name)
        } else {
            t.name.clone()
        };
        rows.push(vec![name, t.description.clone()]);
    }
    tabwrite(&rows, 3)
}

/// Convenience: outline options with a target and platform.
pub fn outline_options(target: Option<&str>, platform: Option<Platform>) -> PlanOptions {
    PlanOptions { target: target.map(str::to_string), target_platform: platform, ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DF: &str = "# VERSION the version to build\nARG VERSION=1.0\nARG UNUSED=x\n\n# build compiles the code\nFROM golang:${VERSION} AS build\n# GOFLAGS flags for go build\nARG GOFLAGS=-v\nRUN --mount=type=secret,id=token,required --mount=type=ssh go build\n\nFROM scratch AS release\nCOPY --from=build /out /\n";

    #[test]
    fn outline_lists_used_args_secrets_and_ssh() {
        let o = outline(DF.as_bytes(), &outline_options(Some("build"), None)).unwrap();
        assert_eq!(o.name, "build");
        assert_eq!(o.description, "compiles the code");
        let names: Vec<&str> = o.args.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, vec!["VERSION", "GOFLAGS"]);
        assert_eq!(
            format_outline(&o),
            "TARGET:      build\nDESCRIPTION: compiles the code\n\nBUILD ARG   VALUE   DESCRIPTION\nVERSION     1.0     the version to build\nGOFLAGS     -v      flags for go build\n\nSECRET   REQUIRED\ntoken    true\n\nSSH       REQUIRED\ndefault   false\n\n"
        );
    }

    #[test]
    fn targets_list() {
        let t = targets(DF.as_bytes()).unwrap();
        assert_eq!(
            format_targets(&t),
            "TARGET              DESCRIPTION\nbuild               compiles the code\nrelease (default)   \n"
        );
    }
}

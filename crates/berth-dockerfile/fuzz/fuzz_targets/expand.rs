//! The shell-word expander and heredoc helpers must never panic.
//! Input: `word \0 NAME=value \0 NAME=value ...`.
#![no_main]

use berth_dockerfile::Lexer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let mut parts = s.split('\0');
    let word = parts.next().unwrap_or("");
    let env: Vec<(String, String)> = parts
        .filter_map(|p| p.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    for esc in ['\\', '`'] {
        let mut l = Lexer::new(esc);
        let _ = l.process(word, &env);
        l.raw_quotes = true;
        l.raw_escapes = true;
        l.skip_unset_env = true;
        let _ = l.process(word, &env);
        l.skip_process_quotes = true;
        let _ = l.process(word, &env);
    }
    let _ = berth_dockerfile::parser::parse_heredoc(word);
    let _ = berth_dockerfile::parser::heredocs_from_line(word);
    let _ = berth_dockerfile::instructions::parse_mount(word, 0);
    let _ = berth_dockerfile::instructions::parse_chmod(word);
    let _ = berth_dockerfile::instructions::parse_go_duration(word);
});

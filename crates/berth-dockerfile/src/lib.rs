//! The Dockerfile frontend: parser, shell-word expansion, typed instructions, stages and ARGs, .dockerignore, lints.

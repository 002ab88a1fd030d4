//! Progress rendering (TTY bars, plain lines, JSON) and Docker's --format Go templates and tables.

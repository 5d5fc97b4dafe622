//! `ConfigError` and `Problem`: every configuration mistake, each with its variable and fix;
//! and `Report`, which collects them (with start-up notices) while the configuration is read.

use std::fmt;

/// One configuration mistake: the variable, what is wrong, and how to fix it.
///
/// Never contains a secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The variable (or config-file key) at fault.
    pub variable: String,
    /// What is wrong with it.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

impl Problem {
    /// Builds a problem.
    pub fn new(
        variable: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            variable: variable.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (fix: {})", self.variable, self.message, self.fix)
    }
}

/// Every problem found in the configuration, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.problems))]
pub struct ConfigError {
    /// The problems, in the order they were found.
    pub problems: Vec<Problem>,
}

fn render(problems: &[Problem]) -> String {
    let noun = if problems.len() == 1 {
        "problem"
    } else {
        "problems"
    };
    let mut text = format!("invalid configuration ({} {noun}):", problems.len());
    for problem in problems {
        text.push_str("\n  ");
        text.push_str(&problem.to_string());
    }
    text
}

/// The problems and notices found so far: the sink every reader of the configuration writes to.
#[derive(Debug, Default)]
pub(crate) struct Report {
    problems: Vec<Problem>,
    notices: Vec<String>,
}

impl Report {
    /// A report holding `problems` found before reading began (non-UTF-8 variables).
    pub(crate) fn with(problems: Vec<Problem>) -> Self {
        Self {
            problems,
            notices: Vec::new(),
        }
    }

    /// Records a problem. Callers never put a secret value in any part of it.
    pub(crate) fn problem(
        &mut self,
        variable: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.problems.push(Problem::new(variable, message, fix));
    }

    /// Records a start-up notice. Callers never put a secret value in it.
    pub(crate) fn notice(&mut self, text: impl Into<String>) {
        self.notices.push(text.into());
    }

    /// The problems and the notices, each in the order they were found.
    pub(crate) fn into_parts(self) -> (Vec<Problem>, Vec<String>) {
        (self.problems, self.notices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_display_names_variable_message_and_fix() {
        let problem = Problem::new("LOG_LEVEL", "\"loud\" is not a log level", "set info");
        assert_eq!(
            problem.to_string(),
            "LOG_LEVEL: \"loud\" is not a log level (fix: set info)"
        );
    }

    #[test]
    fn error_display_has_a_header_then_one_line_per_problem() {
        let error = ConfigError {
            problems: vec![
                Problem::new("A", "bad", "fix a"),
                Problem::new("B", "worse", "fix b"),
            ],
        };
        let text = error.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "invalid configuration (2 problems):",
                "  A: bad (fix: fix a)",
                "  B: worse (fix: fix b)",
            ]
        );
    }
}

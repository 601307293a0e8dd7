//! A run's interrupts on the terminal (spec §14.4): each point the run waits on is shown on
//! standard error with its message and metadata, and answered from standard input: Enter goes
//! on, a line of JSON is that value, any other line is that text. `--auto-resume` goes on at
//! every point without asking.

use std::io::{BufRead, Write};

use serde_json::Value;

use compose::record::{answer_from_text, Point};
use compose::workflow::{Answerer, Asked};

/// Who answers `model-compose run`'s interrupts.
pub struct Terminal {
    pub auto_resume: bool,
}

impl Answerer for Terminal {
    fn ask(&self, points: Vec<Asked>) {
        if self.auto_resume {
            for asked in points {
                let _ = asked.answer.send(Value::Null);
            }
            return;
        }
        // Reading a line blocks: on a thread of its own, which Ctrl-C does not wait for.
        std::thread::spawn(move || {
            let count = points.len();
            for (n, asked) in points.into_iter().enumerate() {
                show(&asked.point, (n + 1, count));
                match read_answer() {
                    Some(answer) => {
                        let _ = asked.answer.send(answer);
                    }
                    // Nobody to answer: the run fails saying so (a dropped sender).
                    None => {
                        eprintln!(
                            "no answer: standard input is closed (use --auto-resume to go on \
                             without asking)"
                        );
                        return;
                    }
                }
            }
        });
    }
}

/// The point as a person reads it, on standard error.
fn show(point: &Point, (n, count): (usize, usize)) {
    let mut err = std::io::stderr().lock();
    let which = match count {
        1 => String::new(),
        _ => format!("[{n}/{count}] "),
    };
    let _ = writeln!(
        err,
        "\n{which}interrupt — job '{}' ({})",
        point.job_id,
        point.phase.as_str()
    );
    if let Some(message) = &point.message {
        let _ = writeln!(err, "{message}");
    }
    if let Some(metadata) = &point.metadata {
        let text = serde_json::to_string_pretty(metadata).unwrap_or_default();
        let _ = writeln!(err, "{text}");
    }
    let _ = write!(
        err,
        "✋ Action required — press Enter to continue, or type an answer (JSON or text): "
    );
    let _ = err.flush();
}

/// A line from standard input as an answer (none when it is closed).
fn read_answer() -> Option<Value> {
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(answer_from_text(line.trim_end_matches(['\r', '\n']))),
    }
}

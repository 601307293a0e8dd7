//! The pieces of a streamed output, as a task keeps them for its listeners and its record.

use std::borrow::Cow;

use crate::workflow::{AgentStep, Piece};

/// The pieces in one string, with where each ends: storage that grows by doubling, rather
/// than one allocation (and its bookkeeping) per token for as long as the task is kept. The
/// few pieces that are an agent's steps are listed apart (a plain stream lists none).
#[derive(Debug, Default)]
pub struct Pieces {
    text: String,
    ends: Vec<usize>,
    /// Which pieces are steps, by index, in order.
    steps: Vec<(usize, AgentStep)>,
}

impl Pieces {
    pub fn push(&mut self, piece: Piece) {
        let text = match piece {
            Piece::Text(text) => text,
            Piece::Step(step, text) => {
                self.steps.push((self.ends.len(), step));
                text
            }
        };
        self.text.push_str(&text);
        self.ends.push(self.text.len());
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// How many pieces there are.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The pieces from the `from`-th on, in order (without walking those before it: a
    /// follower asks for the newest few, again and again, as a long stream grows), each with
    /// its step if it is one.
    pub fn since(&self, from: usize) -> impl Iterator<Item = (Option<AgentStep>, &str)> {
        let from = from.min(self.ends.len());
        let mut start = from.checked_sub(1).map_or(0, |before| self.ends[before]);
        let mut steps = self.steps[self.steps.partition_point(|(at, _)| *at < from)..].iter();
        let mut step = steps.next();
        self.ends[from..]
            .iter()
            .enumerate()
            .map(move |(offset, &end)| {
                let piece = &self.text[start..end];
                start = end;
                let kind = match step {
                    Some(&(at, kind)) if at == from + offset => {
                        step = steps.next();
                        Some(kind)
                    }
                    _ => None,
                };
                (kind, piece)
            })
    }

    /// The answer's text: every piece joined, but the steps that are not text.
    pub fn text(&self) -> Cow<'_, str> {
        if self.steps.is_empty() {
            return Cow::Borrowed(&self.text);
        }
        Cow::Owned(
            self.since(0)
                .filter(|(step, _)| step.is_none_or(|step| step == AgentStep::Text))
                .map(|(_, piece)| piece)
                .collect(),
        )
    }

    /// Makes the pieces one piece and frees the spare room (a finished run nobody follows);
    /// an agent's steps stay apart.
    pub fn join(&mut self) {
        if self.ends.len() > 1 && self.steps.is_empty() {
            self.ends = vec![self.text.len()];
        }
        self.ends.shrink_to_fit();
        self.text.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_come_back_as_they_went_in() {
        let mut pieces = Pieces::default();
        assert!(pieces.is_empty());
        for piece in ["Hel", "", "lo", " 세계"] {
            pieces.push(Piece::Text(piece.into()));
        }
        assert_eq!(texts(&pieces, 0), ["Hel", "", "lo", " 세계"]);
        assert_eq!(texts(&pieces, 2), ["lo", " 세계"]);
        assert_eq!(pieces.since(9).count(), 0);
        assert_eq!(pieces.text(), "Hello 세계");
        pieces.join();
        assert_eq!(texts(&pieces, 0), ["Hello 세계"]);
        pieces.push(Piece::Text("!".into()));
        assert_eq!(texts(&pieces, 1), ["!"]);
    }

    fn texts(pieces: &Pieces, from: usize) -> Vec<&str> {
        pieces.since(from).map(|(_, piece)| piece).collect()
    }

    #[test]
    fn an_agents_steps_keep_their_kind_and_place() {
        let mut pieces = Pieces::default();
        pieces.push(Piece::Step(AgentStep::Text, "Let me see.".into()));
        pieces.push(Piece::Step(AgentStep::ToolCall, "{call}".into()));
        pieces.push(Piece::Step(AgentStep::ToolResult, "{result}".into()));
        pieces.push(Piece::Step(AgentStep::Text, " 42".into()));
        pieces.push(Piece::Step(AgentStep::Message, "{message}".into()));
        assert_eq!(
            pieces.since(2).collect::<Vec<_>>(),
            [
                (Some(AgentStep::ToolResult), "{result}"),
                (Some(AgentStep::Text), " 42"),
                (Some(AgentStep::Message), "{message}"),
            ]
        );
        assert_eq!(pieces.text(), "Let me see. 42");
        pieces.join();
        assert_eq!(pieces.since(0).count(), 5, "steps are not joined");
    }
}

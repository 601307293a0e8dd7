//! The text pieces of a streamed output, as a task keeps them for its listeners and its record.

/// The pieces in one string, with where each ends: storage that grows by doubling, rather
/// than one allocation (and its bookkeeping) per token for as long as the task is kept.
#[derive(Debug, Default)]
pub struct Pieces {
    text: String,
    ends: Vec<usize>,
}

impl Pieces {
    pub fn push(&mut self, piece: &str) {
        self.text.push_str(piece);
        self.ends.push(self.text.len());
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The pieces from the `from`-th on, in order (without walking those before it: a
    /// follower asks for the newest few, again and again, as a long stream grows).
    pub fn since(&self, from: usize) -> impl Iterator<Item = &str> {
        let from = from.min(self.ends.len());
        let mut start = from.checked_sub(1).map_or(0, |before| self.ends[before]);
        self.ends[from..].iter().map(move |&end| {
            let piece = &self.text[start..end];
            start = end;
            piece
        })
    }

    /// Every piece, joined.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Makes the pieces one piece and frees the spare room (a finished run nobody follows).
    pub fn join(&mut self) {
        if self.ends.len() > 1 {
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
            pieces.push(piece);
        }
        assert_eq!(
            pieces.since(0).collect::<Vec<_>>(),
            ["Hel", "", "lo", " 세계"]
        );
        assert_eq!(pieces.since(2).collect::<Vec<_>>(), ["lo", " 세계"]);
        assert_eq!(pieces.since(9).count(), 0);
        assert_eq!(pieces.text(), "Hello 세계");
        pieces.join();
        assert_eq!(pieces.since(0).collect::<Vec<_>>(), ["Hello 세계"]);
        pieces.push("!");
        assert_eq!(pieces.since(1).collect::<Vec<_>>(), ["!"]);
    }
}

//! The Server-Sent Events wire format (WHATWG HTML, "server-sent events"), parsed
//! incrementally with caps on line and event size. No I/O: the client feeds it bytes.

use std::collections::VecDeque;

/// Room on one SSE line beyond `max_event` for the field name, colon and space.
const SSE_LINE_SLACK: usize = 64;

/// One Server-Sent Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, or `"message"` when the event had none.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The stream's last event id (`id:` persists across events, as in the SSE spec);
    /// `None` until one is set, or after an empty `id:` resets it.
    pub id: Option<String>,
}

/// The SSE wire format, incrementally: bytes in, complete events out. No I/O.
pub(crate) struct SseParser {
    pub(crate) max_data: usize,
    max_line: usize,
    /// The current, unterminated line.
    line: Vec<u8>,
    /// The previous chunk ended in CR, so a leading LF finishes that same line ending.
    after_cr: bool,
    first_line: bool,
    event: String,
    data: String,
    last_id: Option<String>,
}

impl SseParser {
    pub(crate) fn new(max_data: usize) -> Self {
        Self {
            max_data,
            max_line: max_data.saturating_add(SSE_LINE_SLACK),
            line: Vec::new(),
            after_cr: false,
            first_line: true,
            event: String::new(),
            data: String::new(),
            last_id: None,
        }
    }

    /// Parses `input`, appending completed events to `out`. On a line or event over the
    /// cap, returns how many bytes of `input` were consumed up to and including the
    /// offending one; the parser is then unusable.
    pub(crate) fn feed(&mut self, input: &[u8], out: &mut VecDeque<SseEvent>) -> Result<(), usize> {
        let mut rest = input;
        while let Some(&first) = rest.first() {
            if std::mem::take(&mut self.after_cr) && first == b'\n' {
                rest = &rest[1..];
                continue;
            }
            let end = rest.iter().position(|&b| b == b'\n' || b == b'\r');
            let take = end.unwrap_or(rest.len());
            if self.line.len() + take > self.max_line {
                let consumed = input.len() - rest.len() + (self.max_line - self.line.len()) + 1;
                return Err(consumed);
            }
            self.line.extend_from_slice(&rest[..take]);
            let Some(end) = end else { break };
            self.after_cr = rest[end] == b'\r';
            rest = &rest[end + 1..];
            let line = std::mem::take(&mut self.line);
            let ok = self.line_done(&line, out);
            self.line = line;
            self.line.clear();
            if !ok {
                return Err(input.len() - rest.len());
            }
        }
        Ok(())
    }

    /// Applies one complete line; false if it makes the event's data exceed the cap.
    fn line_done(&mut self, mut line: &[u8], out: &mut VecDeque<SseEvent>) -> bool {
        if std::mem::take(&mut self.first_line) {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch(out);
            return true;
        }
        if line[0] == b':' {
            return true;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            b"data" => {
                let value = String::from_utf8_lossy(value);
                if self.data.len() + value.len() > self.max_data {
                    return false;
                }
                self.data.push_str(&value);
                self.data.push('\n');
            }
            b"id" if !value.contains(&0) => {
                self.last_id = (!value.is_empty()).then(|| String::from_utf8_lossy(value).into());
            }
            _ => {} // `retry` and unknown fields: nothing we act on
        }
        true
    }

    fn dispatch(&mut self, out: &mut VecDeque<SseEvent>) {
        let event = std::mem::take(&mut self.event);
        if self.data.is_empty() {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop();
        out.push_back(SseEvent {
            event: if event.is_empty() {
                "message".into()
            } else {
                event
            },
            data,
            id: self.last_id.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: &str, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
            id: id.map(Into::into),
        }
    }

    fn parse_in_pieces(input: &[u8], cuts: &[usize]) -> Result<Vec<SseEvent>, usize> {
        let mut parser = SseParser::new(1024);
        let mut out = VecDeque::new();
        let mut start = 0;
        let mut consumed = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(input.len());
        for cut in cuts {
            let piece = &input[start..cut];
            parser.feed(piece, &mut out).map_err(|at| consumed + at)?;
            consumed += piece.len();
            start = cut;
        }
        Ok(out.into())
    }

    #[test]
    fn sse_line_endings_bom_id_reset_and_empty_data_follow_the_spec() {
        let input =
            b"\xEF\xBB\xBFdata: a\r\rdata\rid\r\n\r\nevent: x\n\nid: 9\nretry: 5\ndata:  b\n\n";
        let events = parse_in_pieces(input, &[]).unwrap();
        assert_eq!(
            events,
            [
                event("message", "a", None),
                event("message", "", None),
                event("message", " b", Some("9")),
            ]
        );
    }

    #[test]
    fn sse_overlong_line_is_rejected_at_a_fixed_byte() {
        let mut input = b": ".to_vec();
        input.extend(std::iter::repeat_n(b'c', 5000));
        let limit = 1024 + SSE_LINE_SLACK;
        assert_eq!(parse_in_pieces(&input, &[]), Err(limit + 1));
        assert_eq!(parse_in_pieces(&input, &[7, 900, 1100]), Err(limit + 1));
    }

    proptest::proptest! {
        // Failures are reported, not saved: this module writes no files beside itself.
        #![proptest_config(proptest::test_runner::Config {
            failure_persistence: None,
            ..Default::default()
        })]

        #[test]
        fn sse_parsing_does_not_depend_on_chunk_boundaries(
            cuts in proptest::collection::vec(0usize..200, 0..12)
        ) {
            let input = b": c\r\nevent: a\r\ndata: 1\r\ndata: 2\r\n\r\nid: z\ndata: \xC3\xA9\n\n\
                          data: x\r\rdata: y\n\n";
            let whole = parse_in_pieces(input, &[]).unwrap();
            proptest::prop_assert_eq!(whole.len(), 4);
            proptest::prop_assert_eq!(&whole[1].data, "é");
            proptest::prop_assert_eq!((&whole[2].data[..], &whole[3].data[..]), ("x", "y"));
            proptest::prop_assert_eq!(parse_in_pieces(input, &cuts).unwrap(), whole);
        }
    }
}

//! YAML read into a small tree that remembers the line of every node, so each problem in
//! a release config can name its line and key.

use yaml_rust2::{
    parser::{Event, MarkedEventReceiver, Parser},
    scanner::Marker,
};

/// One YAML node and the line (1-based) it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where it starts.
    pub line: usize,
    /// What it is.
    pub value: Value,
}

/// The shape of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar as written (`1.0.0`, `true`, `erp-hrm-service`); `null` and `~` are scalars
    /// too, told apart by [`Node::is_null`].
    Scalar {
        /// The text.
        text: String,
        /// Whether it was quoted (then it is never null, a number or a bool).
        quoted: bool,
    },
    /// A sequence.
    Sequence(Vec<Node>),
    /// A mapping, in source order (duplicate keys kept, for the validator to report).
    Mapping(Vec<(Node, Node)>),
}

/// A document that is not YAML.
#[derive(Debug, Clone, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SyntaxError {
    /// Where the parser stopped.
    pub line: usize,
    /// What it said.
    pub message: String,
}

impl Node {
    /// The scalar text, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// An empty node: `key:` with nothing after it, `~` or `null`.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, quoted: false } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// What kind of node this is, for messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            _ if self.is_null() => "nothing",
            Value::Scalar { .. } => "a scalar",
            Value::Sequence(_) => "a list",
            Value::Mapping(_) => "a mapping",
        }
    }
}

/// Parses one YAML document (an empty file is an empty mapping).
pub fn parse(source: &str) -> Result<Node, SyntaxError> {
    let mut builder = Builder::default();
    Parser::new_from_str(source)
        .load(&mut builder, false)
        .map_err(|error| SyntaxError {
            line: error.marker().line(),
            message: error.info().to_owned(),
        })?;
    if let Some(message) = builder.unsupported {
        return Err(message);
    }
    Ok(builder.root.unwrap_or(Node {
        line: 1,
        value: Value::Mapping(Vec::new()),
    }))
}

/// Builds the tree from parser events.
#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    root: Option<Node>,
    unsupported: Option<SyntaxError>,
}

/// A collection still being read.
enum Open {
    Sequence(Node),
    Mapping(Node, Option<Node>),
}

impl Builder {
    fn finish(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Open::Sequence(Node {
                value: Value::Sequence(items),
                ..
            })) => items.push(node),
            Some(Open::Mapping(mapping, pending)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => {
                    if let Value::Mapping(entries) = &mut mapping.value {
                        entries.push((key, node));
                    }
                }
            },
            Some(Open::Sequence(_)) => {}
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let line = mark.line().max(1);
        match event {
            Event::Scalar(text, style, _, _) => self.finish(Node {
                line,
                value: Value::Scalar {
                    text,
                    quoted: !matches!(style, yaml_rust2::scanner::TScalarStyle::Plain),
                },
            }),
            Event::SequenceStart(..) => self.stack.push(Open::Sequence(Node {
                line,
                value: Value::Sequence(Vec::new()),
            })),
            Event::MappingStart(..) => self.stack.push(Open::Mapping(
                Node {
                    line,
                    value: Value::Mapping(Vec::new()),
                },
                None,
            )),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(Open::Sequence(node) | Open::Mapping(node, _)) = self.stack.pop() {
                    self.finish(node);
                }
            }
            Event::Alias(_) => {
                self.unsupported.get_or_insert(SyntaxError {
                    line,
                    message: "aliases (*name) are not supported in release configs".to_owned(),
                });
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_know_their_lines() {
        let root = parse("a: 1\nb:\n  - x\n  - [y, z]\nc:\n").expect("yaml");
        let Value::Mapping(entries) = &root.value else {
            panic!("mapping")
        };
        assert_eq!(entries[0].0.as_str(), Some("a"));
        assert_eq!(entries[0].0.line, 1);
        assert_eq!(entries[1].0.line, 2);
        let Value::Sequence(items) = &entries[1].1.value else {
            panic!("list")
        };
        assert_eq!(items[0].line, 3);
        assert_eq!(items[1].line, 4);
        assert!(entries[2].1.is_null());
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let error = parse("a: 1\nb: [x\n").expect_err("unclosed");
        assert!(error.line >= 2, "{error}");
    }

    #[test]
    fn quoted_null_is_text() {
        let root = parse("a: \"null\"").expect("yaml");
        let Value::Mapping(entries) = &root.value else {
            panic!("mapping")
        };
        assert!(!entries[0].1.is_null());
    }
}

//! Just enough XML reading to compare CIB sections whatever tool wrote them.

/// One line per element inside `<section>`, as `parent/child{attr=value ...}`,
/// sorted. Dropped: comments, attribute order, sibling order, and the
/// generated `id`s of `op`, `expression` and `nvpair` (crmsh and pcs name them
/// differently);
/// a missing `boolean-op` is written as its default `and`.
pub(crate) fn normalised(cib: &str, section: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut inside = false;
    for tag in tags(cib) {
        match tag {
            Tag::Open { name, attrs, empty } => {
                if inside {
                    let label = label(&name, attrs);
                    lines.push(format!("{}{}", prefix(&path), label));
                    if !empty {
                        path.push(label);
                    }
                } else if name == section && !empty {
                    inside = true;
                }
            }
            Tag::Close(name) => {
                if inside && path.is_empty() && name == section {
                    inside = false;
                } else if inside {
                    path.pop();
                }
            }
        }
    }
    lines.sort();
    lines
}

fn prefix(path: &[String]) -> String {
    path.iter().map(|p| format!("{p}/")).collect()
}

fn label(name: &str, mut attrs: Vec<(String, String)>) -> String {
    if ["op", "expression", "nvpair"].contains(&name) {
        attrs.retain(|(k, _)| k != "id");
    }
    if name == "rule" && !attrs.iter().any(|(k, _)| k == "boolean-op") {
        attrs.push(("boolean-op".into(), "and".into()));
    }
    attrs.sort();
    let attrs: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{name}{{{}}}", attrs.join(" "))
}

enum Tag {
    Open {
        name: String,
        attrs: Vec<(String, String)>,
        empty: bool,
    },
    Close(String),
}

/// Element tags in document order; comments, declarations and text are skipped.
fn tags(xml: &str) -> Vec<Tag> {
    let mut tags = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        rest = &rest[start..];
        if let Some(body) = rest.strip_prefix("<!--") {
            rest = &body[body.find("-->").expect("unterminated comment") + 3..];
            continue;
        }
        let end = tag_end(rest);
        let inner = &rest[1..end];
        rest = &rest[end + 1..];
        if let Some(name) = inner.strip_prefix('/') {
            tags.push(Tag::Close(name.trim().to_string()));
        } else if !inner.starts_with(['?', '!']) {
            let empty = inner.ends_with('/');
            let inner = inner.trim_end_matches('/');
            let (name, attrs) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
            tags.push(Tag::Open {
                name: name.to_string(),
                attrs: attributes(attrs),
                empty,
            });
        }
    }
    tags
}

/// Index of the `>` closing the tag at the start of `s`, skipping quoted values.
fn tag_end(s: &str) -> usize {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '>') => return i,
            _ => {}
        }
    }
    panic!("unterminated tag: {s}")
}

fn attributes(mut s: &str) -> Vec<(String, String)> {
    let mut attrs = Vec::new();
    while let Some((key, after)) = s.split_once('=') {
        let after = after.trim_start();
        let q = after.chars().next().expect("attribute without value");
        let value_end = after[1..].find(q).expect("unterminated attribute value") + 1;
        attrs.push((key.trim().to_string(), after[1..value_end].to_string()));
        s = &after[value_end + 1..];
    }
    attrs
}

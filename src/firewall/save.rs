//! Reading `iptables -S CHAIN` output: the only listing we parse (never `-L`, whose
//! format changes between versions).

/// The rule specifications in a `-S CHAIN` listing, each split into arguments that
/// `-D CHAIN` accepts back unchanged.
pub(crate) fn rules_of(listing: &str, chain: &str) -> Vec<Vec<String>> {
    listing
        .lines()
        .filter_map(|line| {
            let words = split_words(line);
            match words.as_slice() {
                [flag, c, ..] if flag == "-A" && c == chain => Some(words[2..].to_vec()),
                _ => None,
            }
        })
        .collect()
}

/// The value of `--comment` in a rule specification.
pub(crate) fn comment_of(spec: &[String]) -> Option<&str> {
    spec.windows(2)
        .find(|w| w[0] == "--comment")
        .map(|w| w[1].as_str())
}

/// Splits one line the way iptables quotes it: double quotes group, backslash escapes.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                in_word = true;
            }
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_yields_rule_specs_of_the_chain_only() {
        let listing = "-N REDIS-HA\n\
            -A REDIS-HA -p tcp -m conntrack --ctorigdstport 6381 --ctdir ORIGINAL -m comment --comment \"redis-ha:RedisLBWriteBlock:6381\" -j REJECT --reject-with tcp-reset\n\
            -A REDIS-HA -p tcp -m comment --comment \"two words \\\"q\\\"\" -j DROP\n\
            -A OTHER -j ACCEPT\n";
        let rules = rules_of(listing, "REDIS-HA");
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0][0], "-p");
        assert_eq!(
            comment_of(&rules[0]),
            Some("redis-ha:RedisLBWriteBlock:6381")
        );
        assert_eq!(comment_of(&rules[1]), Some("two words \"q\""));
        assert_eq!(rules[1].last().map(String::as_str), Some("DROP"));
    }

    #[test]
    fn empty_chain_has_no_rules() {
        assert!(rules_of("-N REDIS-HA\n", "REDIS-HA").is_empty());
        assert!(rules_of("", "REDIS-HA").is_empty());
    }
}

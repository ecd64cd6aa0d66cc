//! Reading `iptables -S` output: the only listing we parse (never `-L`, whose format
//! changes between versions).

/// One table as `iptables -t TABLE -S` lists it: which chains exist and every rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Listing {
    /// Built-in (`-P`) and user-defined (`-N`) chains.
    chains: Vec<String>,
    rules: Vec<Listed>,
}

/// One `-A CHAIN ...` line of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    pub(crate) chain: String,
    /// The specification split into arguments.
    pub(crate) spec: Vec<String>,
    /// The specification as iptables quoted it, which `iptables-restore` reads back
    /// unchanged (no re-quoting of comments by us).
    pub(crate) text: String,
}

impl Listing {
    pub(crate) fn parse(listing: &str) -> Self {
        let mut parsed = Listing::default();
        for line in listing.lines() {
            let words = split_words(line);
            match words.as_slice() {
                [flag, chain, ..] if flag == "-N" || flag == "-P" => {
                    parsed.chains.push(chain.clone())
                }
                [flag, chain, ..] if flag == "-A" => {
                    let text = line
                        .trim_end()
                        .strip_prefix("-A ")
                        .and_then(|rest| rest.split_once(' '))
                        .map_or("", |(_, spec)| spec)
                        .to_string();
                    parsed.rules.push(Listed {
                        chain: chain.clone(),
                        spec: words[2..].to_vec(),
                        text,
                    });
                }
                _ => {}
            }
        }
        parsed
    }

    pub(crate) fn has_chain(&self, chain: &str) -> bool {
        self.chains.iter().any(|c| c == chain)
    }

    /// Every rule of the table, in listing order.
    pub(crate) fn rules(&self) -> &[Listed] {
        &self.rules
    }

    /// The rules of one chain, in order.
    pub(crate) fn rules_in<'a>(&'a self, chain: &'a str) -> impl Iterator<Item = &'a Listed> {
        self.rules.iter().filter(move |r| r.chain == chain)
    }
}

impl Listed {
    pub(crate) fn comment(&self) -> Option<&str> {
        comment_of(&self.spec)
    }

    /// The chain or target it jumps (`-j`) or goes (`-g`) to.
    pub(crate) fn target(&self) -> Option<&str> {
        self.spec
            .windows(2)
            .find(|w| w[0] == "-j" || w[0] == "-g")
            .map(|w| w[1].as_str())
    }
}

/// The rule specifications in a `-S CHAIN` listing, each split into arguments that
/// `-D CHAIN` accepts back unchanged.
pub(crate) fn rules_of(listing: &str, chain: &str) -> Vec<Vec<String>> {
    Listing::parse(listing)
        .rules_in(chain)
        .map(|rule| rule.spec.clone())
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
    fn a_table_listing_knows_its_chains_and_keeps_each_rule_as_quoted() {
        let listing = Listing::parse(
            "-P INPUT ACCEPT\n\
             -N REDIS-HA\n\
             -A INPUT -m comment --comment redis-ha -j REDIS-HA\n\
             -A REDIS-HA -p tcp -m mark --mark 0x18ec -m comment --comment \"two words \\\"q\\\"\" -g OTHER\n",
        );
        assert!(listing.has_chain("INPUT"));
        assert!(listing.has_chain("REDIS-HA"));
        assert!(!listing.has_chain("OTHER"));
        assert_eq!(listing.rules().len(), 2);
        let jump = &listing.rules()[0];
        assert_eq!(
            (jump.chain.as_str(), jump.comment(), jump.target()),
            ("INPUT", Some("redis-ha"), Some("REDIS-HA"))
        );
        assert_eq!(jump.text, "-m comment --comment redis-ha -j REDIS-HA");
        let ours: Vec<&Listed> = listing.rules_in("REDIS-HA").collect();
        assert_eq!(ours.len(), 1);
        assert_eq!(ours[0].comment(), Some("two words \"q\""));
        assert_eq!(ours[0].target(), Some("OTHER"));
        assert_eq!(
            ours[0].text,
            "-p tcp -m mark --mark 0x18ec -m comment --comment \"two words \\\"q\\\"\" -g OTHER"
        );
    }

    #[test]
    fn empty_chain_has_no_rules() {
        assert!(rules_of("-N REDIS-HA\n", "REDIS-HA").is_empty());
        assert!(rules_of("", "REDIS-HA").is_empty());
    }
}

//! Validated text newtypes and word counting.
//!
//! Each newtype has a private field and a `parse` that trims and checks the input, so a
//! value that exists is valid. Errors name the client-facing (camelCase) field.

use crate::Error;
use serde::{Deserialize, Serialize};

/// Checks `value` is 1..=`max` characters after trimming; returns the trimmed text.
pub fn required(field: &str, value: &str, max: usize) -> Result<String, Error> {
    let v = value.trim();
    if v.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    bounded(field, v, max)
}

/// Checks `value` is at most `max` characters (it may be empty); returns the text as is.
pub fn bounded(field: &str, value: &str, max: usize) -> Result<String, Error> {
    let n = value.chars().count();
    if n > max {
        return Err(Error::invalid(
            field,
            format!("must be at most {max} characters, got {n}"),
        ));
    }
    if value.chars().any(|c| c == '\0') {
        return Err(Error::invalid(field, "must not contain NUL characters"));
    }
    Ok(value.to_owned())
}

/// Checks an integer is within `min..=max`.
pub fn in_range(field: &str, value: i64, min: i64, max: i64) -> Result<i64, Error> {
    if value < min || value > max {
        return Err(Error::invalid(
            field,
            format!("must be between {min} and {max}, got {value}"),
        ));
    }
    Ok(value)
}

/// Longest title of a novel, volume or chapter.
pub const MAX_TITLE: usize = 200;
/// Longest name of an entity, user or key.
pub const MAX_NAME: usize = 200;
/// Longest short free text (description, outline, summary).
pub const MAX_TEXT: usize = 20_000;
/// Longest chapter content (characters).
pub const MAX_CONTENT: usize = 500_000;

/// A title: 1..=200 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Title(String);

impl Title {
    /// Validates a title for the given input field.
    pub fn parse(field: &str, value: &str) -> Result<Self, Error> {
        required(field, value, MAX_TITLE).map(Self)
    }
    /// The title text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The title text, owned.
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A tenant slug: 2..=63 characters of `a-z`, `0-9` and `-`, not starting or ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slug(String);

impl Slug {
    /// Validates a slug.
    pub fn parse(value: &str) -> Result<Self, Error> {
        let v = value.trim();
        let ok = (2..=63).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !v.starts_with('-')
            && !v.ends_with('-');
        if ok {
            Ok(Self(v.to_owned()))
        } else {
            Err(Error::invalid(
                "slug",
                "must be 2-63 characters of a-z, 0-9 and '-', not starting or ending with '-'",
            ))
        }
    }
    /// The slug text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, lower-cased; checked for shape only (one `@`, a dot in the domain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email(String);

impl Email {
    /// Validates an email address.
    pub fn parse(value: &str) -> Result<Self, Error> {
        let v = value.trim().to_lowercase();
        let valid = v.len() <= 254
            && match v.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                        && !domain.contains('@')
                        && !v.chars().any(char::is_whitespace)
                }
                None => false,
            };
        if valid {
            Ok(Self(v))
        } else {
            Err(Error::invalid("email", "is not a valid email address"))
        }
    }
    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A BCP-47-like language tag (`en`, `zh`, `zh-Hans`, `pt-BR`): 2..=35 ASCII letters,
/// digits and `-`.
pub fn language_tag(value: &str) -> Result<String, Error> {
    let v = value.trim();
    let ok = (2..=35).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && v.as_bytes()[0].is_ascii_alphabetic();
    if ok {
        Ok(v.to_owned())
    } else {
        Err(Error::invalid(
            "language",
            "must be a language tag such as en, zh or pt-BR",
        ))
    }
}

/// Whether a language tag is Chinese, Japanese or Korean (counted by characters).
pub fn is_cjk_language(language: &str) -> bool {
    let primary = language
        .split('-')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(primary.as_str(), "zh" | "ja" | "ko" | "yue" | "wuu")
}

/// Whether `c` is a CJK character (counted as a word of its own).
pub fn is_cjk_char(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF   // Hiragana, Katakana
        | 0x3400..=0x4DBF // CJK Extension A
        | 0x4E00..=0x9FFF // CJK Unified Ideographs
        | 0xAC00..=0xD7AF // Hangul syllables
        | 0xF900..=0xFAFF // CJK Compatibility Ideographs
        | 0x20000..=0x2FA1F)
}

/// Counts the length of a text the way authors count it: every CJK character counts as
/// one, and every run of other letters or digits counts as one word. The same rule serves
/// every language, so a Chinese text with some Latin names is counted sensibly too.
pub fn count_words(text: &str) -> i64 {
    let mut counter = WordCounter::default();
    counter.push_str(text);
    counter.count()
}

/// Counts words character by character, exactly like [`count_words`] (for callers that
/// walk a text once and need the count as they go).
#[derive(Debug, Clone, Copy, Default)]
pub struct WordCounter {
    count: i64,
    in_word: bool,
}

impl WordCounter {
    /// Takes the next character.
    pub fn push(&mut self, c: char) {
        if is_cjk_char(c) {
            self.count += 1;
            self.in_word = false;
        } else if c.is_alphanumeric() || (self.in_word && (c == '\'' || c == '’' || c == '-')) {
            if !self.in_word {
                self.count += 1;
                self.in_word = true;
            }
        } else {
            self.in_word = false;
        }
    }

    /// Takes every character of `text`.
    pub fn push_str(&mut self, text: &str) {
        text.chars().for_each(|c| self.push(c));
    }

    /// Words so far.
    pub fn count(&self) -> i64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_english_words_and_cjk_characters() {
        assert_eq!(count_words("The dragon's hoard, at last."), 5);
        assert_eq!(count_words("  well-known   fact "), 2);
        assert_eq!(count_words("林黛玉进了贾府。"), 7);
        assert_eq!(count_words("Alice 去了 Paris"), 4);
        assert_eq!(count_words(""), 0);
    }

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(
            Title::parse("title", "  Dune ").map(Title::into_inner).ok(),
            Some("Dune".into())
        );
        assert!(Title::parse("title", "   ").is_err());
        assert!(Title::parse("title", &"x".repeat(201)).is_err());
        assert!(Title::parse("title", &"字".repeat(200)).is_ok());
    }

    #[test]
    fn slugs_and_emails_are_checked() {
        assert!(Slug::parse("acme-books").is_ok());
        assert!(Slug::parse("Acme").is_err());
        assert!(Slug::parse("-x").is_err());
        assert_eq!(
            Email::parse(" A@Example.org ")
                .map(|e| e.as_str().to_owned())
                .ok(),
            Some("a@example.org".into())
        );
        assert!(Email::parse("nobody").is_err());
        assert!(Email::parse("a@b").is_err());
    }

    #[test]
    fn language_tags() {
        assert!(language_tag("zh-Hans").is_ok());
        assert!(language_tag("e").is_err());
        assert!(is_cjk_language("zh-CN"));
        assert!(!is_cjk_language("en"));
    }
}

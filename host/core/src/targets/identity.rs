//! Identity rules for a target: logins, emails, containers and group names
//! made by templates, and collisions resolved by the next `{n}`.
//!
//! A template is text with placeholders in braces. For people: `{first}`,
//! `{last}`, `{initial}` (the first letter of the first name), `{mis_id}`,
//! `{year}`, `{role}`, `{domain}` and `{n}`; for groups: `{kind}`, `{name}`,
//! `{code}`, `{year}` and `{prefix}`. In logins and emails every value is
//! folded: lower-cased, diacritics taken off (`Zoë` → `zoe`, `Łukasz` →
//! `lukasz`), apostrophes, spaces and anything else outside `a-z`, `0-9`,
//! `.`, `-` and `_` removed, so `O'Neil-Smith` → `oneil-smith`. `{n}` is
//! empty for the first person to want a name, then `2`, `3`, …; a login
//! template without `{n}` gets it at its end (before the `@` of an email).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

/// The placeholders a template may use.
const PLACEHOLDERS: [&str; 12] = [
    "first", "last", "initial", "mis_id", "year", "role", "domain", "n", "kind", "name", "code",
    "prefix",
];

/// A checked template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Template(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template {template:?} uses {{{placeholder}}}, which is not one of {{{}}}", PLACEHOLDERS.join("}, {"))]
    Unknown {
        template: String,
        placeholder: String,
    },
    #[error("template {0:?} has a brace that is never closed")]
    Unclosed(String),
}

impl TryFrom<String> for Template {
    type Error = TemplateError;

    fn try_from(text: String) -> Result<Self, TemplateError> {
        let mut rest = text.as_str();
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                return Err(TemplateError::Unclosed(text.clone()));
            };
            let placeholder = &rest[open + 1..open + close];
            if !PLACEHOLDERS.contains(&placeholder) {
                return Err(TemplateError::Unknown {
                    template: text.clone(),
                    placeholder: placeholder.to_string(),
                });
            }
            rest = &rest[open + close + 1..];
        }
        Ok(Self(text))
    }
}

impl From<Template> for String {
    fn from(template: Template) -> String {
        template.0
    }
}

impl Template {
    /// A template known to be good (the defaults).
    pub fn fixed(text: &str) -> Self {
        Self::try_from(text.to_string()).expect("a built-in template is well formed")
    }

    /// The text with every placeholder replaced by `value(name)`.
    pub fn render(&self, value: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        let mut rest = self.0.as_str();
        while let Some(open) = rest.find('{') {
            let close = open + rest[open..].find('}').expect("checked when parsed");
            out.push_str(&rest[..open]);
            out.push_str(&value(&rest[open + 1..close]));
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        out
    }

    fn has(&self, placeholder: &str) -> bool {
        self.0.contains(&format!("{{{placeholder}}}"))
    }

    /// This template with `{n}` added where a collision needs it.
    fn numbered(&self) -> Template {
        if self.has("n") {
            return self.clone();
        }
        match self.0.rfind('@') {
            Some(at) => Template(format!("{}{{n}}{}", &self.0[..at], &self.0[at..])),
            None => Template(format!("{}{{n}}", self.0)),
        }
    }
}

/// `text` as a login part: lower case, diacritics folded, only `a-z`,
/// `0-9`, `.`, `-` and `_` kept.
pub fn fold(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        match c {
            'a'..='z' | '0'..='9' | '.' | '-' | '_' => out.push(c),
            _ => out.push_str(folded_letter(c)),
        }
    }
    out
}

/// The ASCII letters a Latin letter with a diacritic stands for; the empty
/// string for anything else (apostrophes, spaces, other scripts).
fn folded_letter(c: char) -> &'static str {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' | 'ǎ' | 'ạ' | 'ả' | 'ấ' | 'ầ' | 'ẩ'
        | 'ẫ' | 'ậ' | 'ắ' | 'ằ' | 'ẳ' | 'ẵ' | 'ặ' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' | 'ẹ' | 'ẻ' | 'ẽ' | 'ế' | 'ề' | 'ể'
        | 'ễ' | 'ệ' => "e",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'ĥ' | 'ħ' => "h",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' | 'ǐ' | 'ỉ' | 'ị' => "i",
        'ĵ' => "j",
        'ķ' => "k",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'ñ' | 'ń' | 'ņ' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' | 'ơ' | 'ǒ' | 'ọ' | 'ỏ' | 'ố' | 'ồ'
        | 'ổ' | 'ỗ' | 'ộ' | 'ớ' | 'ờ' | 'ở' | 'ỡ' | 'ợ' => "o",
        'œ' => "oe",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'ś' | 'ŝ' | 'ş' | 'š' | 'ș' => "s",
        'ß' => "ss",
        'ţ' | 'ť' | 'ŧ' | 'ț' => "t",
        'þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' | 'ư' | 'ǔ' | 'ụ' | 'ủ' | 'ứ'
        | 'ừ' | 'ử' | 'ữ' | 'ự' => "u",
        'ŵ' => "w",
        'ý' | 'ÿ' | 'ŷ' | 'ỳ' | 'ỵ' | 'ỷ' | 'ỹ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => "",
    }
}

/// What a person's login is made from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameParts {
    pub first: String,
    pub last: String,
    pub mis_id: String,
    pub year: String,
    pub role: String,
    pub domain: String,
}

impl NameParts {
    /// A placeholder's value as the source has it: for containers.
    pub fn raw(&self, placeholder: &str) -> String {
        match placeholder {
            "first" => self.first.clone(),
            "last" => self.last.clone(),
            "initial" => self.first.chars().take(1).collect(),
            "mis_id" => self.mis_id.clone(),
            "year" => self.year.clone(),
            "role" => self.role.clone(),
            "domain" => self.domain.clone(),
            _ => String::new(),
        }
    }

    /// A placeholder's value folded for a login; `n` is `{n}`.
    fn value(&self, placeholder: &str, n: &str) -> String {
        match placeholder {
            "n" => n.to_string(),
            "domain" => self.domain.to_lowercase(),
            other => fold(&self.raw(other)),
        }
    }
}

/// The value of `{n}` for the `index`th candidate: "", "2", "3", …
fn suffix(index: usize) -> String {
    if index == 0 {
        String::new()
    } else {
        (index + 1).to_string()
    }
}

/// A login and the email made with the same `{n}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub email: Option<String>,
}

/// The login and email templates of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRules {
    pub username: Template,
    pub email: Option<Template>,
}

/// Candidates tried before a name counts as impossible to place.
const MAX_CANDIDATES: usize = 1000;

impl LoginRules {
    fn candidate(&self, parts: &NameParts, index: usize) -> Login {
        let n = suffix(index);
        Login {
            username: self.username.numbered().render(|p| parts.value(p, &n)),
            email: self
                .email
                .as_ref()
                .map(|t| t.numbered().render(|p| parts.value(p, &n))),
        }
    }

    /// The first login whose username (and email) nobody holds: `taken`
    /// holds every login already used on the target, lower-cased.
    pub fn allocate(&self, parts: &NameParts, taken: &HashSet<String>) -> Option<Login> {
        (0..MAX_CANDIDATES)
            .map(|i| self.candidate(parts, i))
            .find(|login| {
                !taken.contains(&login.username)
                    && login
                        .email
                        .as_ref()
                        .is_none_or(|email| !taken.contains(email))
            })
    }

    /// Whether `username` is what the template makes of `parts` with some
    /// `{n}`: a login made before a change of name does not match.
    pub fn fits(&self, parts: &NameParts, username: &str) -> bool {
        let marker = "\u{1}";
        let shape = self.username.numbered().render(|p| parts.value(p, marker));
        let (before, after) = shape.split_once(marker).unwrap_or((&shape, ""));
        username
            .strip_prefix(before)
            .and_then(|rest| rest.strip_suffix(after))
            .is_some_and(|n| {
                n.is_empty() || (n.parse::<usize>().is_ok_and(|n| n >= 2) && !n.starts_with('0'))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(first: &str, last: &str) -> NameParts {
        NameParts {
            first: first.into(),
            last: last.into(),
            mis_id: "A123".into(),
            year: "Year 7".into(),
            role: "student".into(),
            domain: "School.org".into(),
        }
    }

    fn rules(username: &str, email: Option<&str>) -> LoginRules {
        LoginRules {
            username: Template::fixed(username),
            email: email.map(Template::fixed),
        }
    }

    #[test]
    fn names_are_folded_the_way_logins_need() {
        assert_eq!(fold("Zoë"), "zoe");
        assert_eq!(fold("O'Neil-Smith"), "oneil-smith");
        assert_eq!(fold("Nguyễn"), "nguyen");
        assert_eq!(fold("Łukasz Żółć"), "lukaszzolc");
        assert_eq!(fold("Strauß"), "strauss");
        assert_eq!(fold("Van Der Berg"), "vanderberg");
    }

    #[test]
    fn the_second_person_with_a_name_gets_2_and_the_email_follows() {
        let rules = rules("{first}.{last}{n}", Some("{first}.{last}{n}@{domain}"));
        let zoe = parts("Zoë", "O'Neil");
        let first = rules.allocate(&zoe, &HashSet::new()).unwrap();
        assert_eq!(first.username, "zoe.oneil");
        assert_eq!(first.email.as_deref(), Some("zoe.oneil@school.org"));
        let taken = HashSet::from(["zoe.oneil".to_string()]);
        let second = rules.allocate(&zoe, &taken).unwrap();
        assert_eq!(second.username, "zoe.oneil2");
        assert_eq!(second.email.as_deref(), Some("zoe.oneil2@school.org"));
        let taken = HashSet::from(["zoe.oneil2@school.org".to_string(), "zoe.oneil".into()]);
        assert_eq!(rules.allocate(&zoe, &taken).unwrap().username, "zoe.oneil3");
    }

    #[test]
    fn a_template_without_n_still_resolves_collisions() {
        let rules = rules("{initial}{last}", Some("{initial}{last}@{domain}"));
        let taken = HashSet::from(["zoneil".to_string()]);
        let login = rules.allocate(&parts("Zoë", "O'Neil"), &taken).unwrap();
        assert_eq!(login.username, "zoneil2");
        assert_eq!(login.email.as_deref(), Some("zoneil2@school.org"));
    }

    #[test]
    fn a_login_fits_the_name_it_was_made_from_and_not_a_new_one() {
        let rules = rules("{first}.{last}{n}", None);
        let zoe = parts("Zoë", "O'Neil");
        assert!(rules.fits(&zoe, "zoe.oneil"));
        assert!(rules.fits(&zoe, "zoe.oneil7"));
        assert!(!rules.fits(&zoe, "zoe.oneil1"));
        assert!(!rules.fits(&zoe, "zoe.oneilx"));
        assert!(!rules.fits(&parts("Zoë", "Smith"), "zoe.oneil"));
    }

    #[test]
    fn unknown_placeholders_and_open_braces_are_refused_by_name() {
        let error = Template::try_from("{first}.{surname}".to_string()).unwrap_err();
        assert!(error.to_string().contains("{surname}"), "{error}");
        assert!(Template::try_from("{first".to_string()).is_err());
        assert_eq!(
            Template::fixed("ou={year},ou=Students").render(|p| parts("a", "b").raw(p)),
            "ou=Year 7,ou=Students"
        );
    }
}

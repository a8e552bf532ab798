//! User-facing languages: Finnish, Swedish and English, through rust-i18n.
//! Strings live in `locales/app.yml`.

use axum::http::{header, HeaderMap};
use serde::{Deserialize, Serialize};

/// Cookie that remembers a language picked before signing in.
pub const LANG_COOKIE: &str = "etahoiva_lang";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Fi,
    Sv,
    En,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::Fi, Lang::Sv, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Fi => "fi",
            Lang::Sv => "sv",
            Lang::En => "en",
        }
    }

    /// The language's name in itself, for the language switcher.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::Fi => "Suomi",
            Lang::Sv => "Svenska",
            Lang::En => "English",
        }
    }

    /// Parses `fi`, `sv`, `en` and tags such as `sv-FI` or `fi_FI`.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "fi" => Some(Lang::Fi),
            "sv" => Some(Lang::Sv),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The best of our languages for an `Accept-Language` header, by quality.
    pub fn from_accept_language(value: &str) -> Option<Lang> {
        let mut best: Option<(f32, usize, Lang)> = None;
        for (index, item) in value.split(',').enumerate() {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Lang::parse) else {
                continue;
            };
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if quality <= 0.0 {
                continue;
            }
            let better = match best {
                None => true,
                Some((q, i, _)) => quality > q || (quality == q && index < i),
            };
            if better {
                best = Some((quality, index, lang));
            }
        }
        best.map(|(_, _, lang)| lang)
    }

    /// The user's setting, else the language cookie, else the browser's
    /// languages; Finnish when nothing matches.
    pub fn negotiate(user_setting: Option<&str>, headers: &HeaderMap) -> Lang {
        user_setting
            .and_then(Lang::parse)
            .or_else(|| {
                crate::auth::cookie_value(headers, LANG_COOKIE)
                    .as_deref()
                    .and_then(Lang::parse)
            })
            .or_else(|| {
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Lang::from_accept_language)
            })
            .unwrap_or(Lang::Fi)
    }

    /// The text of `key` in this language.
    pub fn t(&self, key: &str) -> String {
        rust_i18n::t!(key, locale = self.code()).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_prefers_quality_then_order() {
        assert_eq!(
            Lang::from_accept_language("sv-FI,sv;q=0.9,en;q=0.8"),
            Some(Lang::Sv)
        );
        assert_eq!(
            Lang::from_accept_language("de-DE,en;q=0.5,fi;q=0.7"),
            Some(Lang::Fi)
        );
        assert_eq!(Lang::from_accept_language("de,fr"), None);
        assert_eq!(Lang::from_accept_language("fi;q=0,en"), Some(Lang::En));
    }

    #[test]
    fn user_setting_wins_over_cookie_and_browser() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_LANGUAGE, "en-GB".parse().unwrap());
        assert_eq!(Lang::negotiate(None, &headers), Lang::En);
        headers.insert(header::COOKIE, "etahoiva_lang=sv".parse().unwrap());
        assert_eq!(Lang::negotiate(None, &headers), Lang::Sv);
        assert_eq!(Lang::negotiate(Some("fi"), &headers), Lang::Fi);
        assert_eq!(Lang::negotiate(None, &HeaderMap::new()), Lang::Fi);
    }

    #[test]
    fn every_key_is_translated_in_every_language() {
        let source = include_str!("../locales/app.yml");
        let keys: Vec<&str> = source
            .lines()
            .filter(|l| !l.starts_with(' ') && !l.starts_with('_') && l.ends_with(':'))
            .map(|l| l.trim_end_matches(':'))
            .collect();
        assert!(keys.len() > 10, "locale file has too few keys");
        for key in keys {
            let texts: Vec<String> = Lang::ALL.iter().map(|l| l.t(key)).collect();
            for (lang, text) in Lang::ALL.iter().zip(&texts) {
                assert!(
                    !text.is_empty() && text != key,
                    "{key} missing in {}",
                    lang.code()
                );
            }
            if !key.starts_with("brand") {
                assert_ne!(texts[0], texts[2], "{key}: Finnish text equals English");
            }
        }
    }
}

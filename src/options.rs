//! One `-o key[=value]` and the ways reading it can fail. Each layer owns its keys and
//! reads them with these helpers; `mount` only splits the list and asks each in turn.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionError {
    #[error("option {0} needs a value ({0}=…)")]
    NeedsValue(String),
    #[error("option {0}: not a number")]
    NotANumber(String),
    #[error("option {key}: {why}")]
    BadValue { key: String, why: String },
    #[error("unknown option: {0}")]
    Unknown(String),
}

/// One option of a comma-separated list.
#[derive(Debug, Clone, Copy)]
pub struct Opt<'a> {
    pub key: &'a str,
    pub value: Option<&'a str>,
}

impl<'a> Opt<'a> {
    pub fn parse(item: &'a str) -> Opt<'a> {
        match item.split_once('=') {
            Some((key, value)) => Opt {
                key,
                value: Some(value),
            },
            None => Opt {
                key: item,
                value: None,
            },
        }
    }

    /// The items of `-o a,b=c,…`, blanks skipped.
    pub fn list(list: &'a str) -> impl Iterator<Item = Opt<'a>> {
        list.split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(Opt::parse)
    }

    pub fn value(&self) -> Result<&'a str, OptionError> {
        self.value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| OptionError::NeedsValue(self.key.to_owned()))
    }

    pub fn number(&self) -> Result<u64, OptionError> {
        self.value()?
            .parse::<u64>()
            .map_err(|_| OptionError::NotANumber(self.key.to_owned()))
    }

    pub fn bad(&self, why: impl Into<String>) -> OptionError {
        OptionError::BadValue {
            key: self.key.to_owned(),
            why: why.into(),
        }
    }
}

impl std::fmt::Display for Opt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.value {
            Some(v) => write!(f, "{}={v}", self.key),
            None => f.write_str(self.key),
        }
    }
}

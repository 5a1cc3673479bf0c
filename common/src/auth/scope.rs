//! What a token may do: the scopes, by name.
use super::AuthError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    JobsRead,
    JobsWrite,
    RemindersRead,
    RemindersWrite,
    EmailsSend,
    Admin,
    FinanceRead,
    FinanceWrite,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::JobsRead => "jobs:read",
            Scope::JobsWrite => "jobs:write",
            Scope::RemindersRead => "reminders:read",
            Scope::RemindersWrite => "reminders:write",
            Scope::EmailsSend => "emails:send",
            Scope::Admin => "admin",
            Scope::FinanceRead => "finance:read",
            Scope::FinanceWrite => "finance:write",
        }
    }

    pub const ALL: [Scope; 8] = [
        Scope::JobsRead,
        Scope::JobsWrite,
        Scope::RemindersRead,
        Scope::RemindersWrite,
        Scope::EmailsSend,
        Scope::Admin,
        Scope::FinanceRead,
        Scope::FinanceWrite,
    ];

    /// An operator's scope: never on a token confined to one user.
    pub fn is_operator(self) -> bool {
        self == Scope::Admin
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|sc| sc.as_str() == s)
    }
}

/// Parses `jobs:read,jobs:write` (commas or spaces).
pub fn parse_scopes(list: &str) -> Result<Vec<Scope>, AuthError> {
    list.split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(|s| Scope::parse(s).ok_or_else(|| AuthError::UnknownScope(s.to_string())))
        .collect()
}

//! The e-mail templates: a subject, a text part and an HTML part each, rendered with
//! minijinja. HTML parts are auto-escaped, so a user's name cannot inject markup; a variable a
//! template needs but was not given is an error, never an empty string in a sent e-mail.
use std::sync::OnceLock;

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

/// A template and the variables it cannot do without.
pub struct Template {
    pub name: &'static str,
    subject: &'static str,
    pub required: &'static [&'static str],
    /// Its send job's priority: a password reset never waits behind a run of summaries.
    pub priority: u8,
    /// Written to operators about the platform (a failed backup): never sent by a token
    /// confined to one user.
    pub operator: bool,
}

pub const TEMPLATES: &[Template] = &[
    Template {
        name: "password_reset",
        subject: "Reset your password",
        required: &["name", "reset_url", "expires_minutes"],
        priority: 0,
        operator: false,
    },
    Template {
        name: "bill_reminder",
        subject: "Reminder: {{ title }} is due on {{ due_date }}",
        required: &["name", "title", "due_date"],
        priority: 3,
        operator: false,
    },
    Template {
        name: "low_balance",
        subject: "Low balance ahead on {{ date }}",
        required: &["name", "date", "projected_balance", "threshold"],
        priority: 3,
        operator: false,
    },
    Template {
        name: "backup_failed",
        subject: "Nightshift: {{ what }} failed for backup {{ backup_id }}",
        required: &["what", "backup_id", "database", "error"],
        priority: 3,
        operator: true,
    },
    Template {
        name: "weekly_summary",
        subject: "Your week from {{ week_start }}",
        required: &["name", "week_start", "income", "spending", "closing_balance"],
        priority: 8,
        operator: false,
    },
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error(
        "unknown template `{0}` (known: password_reset, bill_reminder, low_balance, backup_failed, weekly_summary)"
    )]
    Unknown(String),
    #[error("vars must be a JSON object")]
    NotAnObject,
    #[error("template `{template}` needs the variable `{var}`")]
    Missing { template: &'static str, var: &'static str },
    #[error("rendering `{template}`: {message}")]
    Render { template: &'static str, message: String },
}

impl TemplateError {
    /// The request field the error is about, for API errors.
    pub fn field(&self) -> String {
        match self {
            TemplateError::Unknown(_) => "template".into(),
            TemplateError::NotAnObject | TemplateError::Render { .. } => "vars".into(),
            TemplateError::Missing { var, .. } => format!("vars.{var}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        macro_rules! add {
            ($($file:literal),*) => {$(
                env.add_template($file, include_str!(concat!("../../templates/email/", $file)))
                    .expect(concat!("template ", $file, " parses"));
            )*};
        }
        add!(
            "base.html",
            "password_reset.txt",
            "password_reset.html",
            "bill_reminder.txt",
            "bill_reminder.html",
            "low_balance.txt",
            "low_balance.html",
            "backup_failed.txt",
            "backup_failed.html",
            "weekly_summary.txt",
            "weekly_summary.html"
        );
        env
    })
}

pub fn find(name: &str) -> Result<&'static Template, TemplateError> {
    TEMPLATES
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| TemplateError::Unknown(name.to_string()))
}

/// Renders `name` with `vars`, checking first that every required variable is there.
pub fn render(name: &str, vars: &Value) -> Result<Rendered, TemplateError> {
    let t = find(name)?;
    let obj = vars.as_object().ok_or(TemplateError::NotAnObject)?;
    if let Some(var) = t.required.iter().find(|v| obj.get(**v).is_none_or(Value::is_null)) {
        return Err(TemplateError::Missing { template: t.name, var });
    }
    let fail = |e: minijinja::Error| TemplateError::Render {
        template: t.name,
        message: e.to_string(),
    };
    let env = env();
    // A header cannot hold a line break; a subject made of user text must not try.
    let subject: String = env
        .render_str(t.subject, vars)
        .map_err(fail)?
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut ctx = obj.clone();
    ctx.insert("subject".into(), Value::String(subject.clone()));
    let ctx = Value::Object(ctx);
    let text = env
        .get_template(&format!("{name}.txt"))
        .and_then(|tpl| tpl.render(&ctx))
        .map_err(fail)?;
    let html = env
        .get_template(&format!("{name}.html"))
        .and_then(|tpl| tpl.render(&ctx))
        .map_err(fail)?;
    Ok(Rendered { subject, text, html })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_template_renders_with_its_required_variables() {
        for t in TEMPLATES {
            let vars: serde_json::Map<_, _> = t.required.iter().map(|v| (v.to_string(), json!("x"))).collect();
            let r = render(t.name, &Value::Object(vars)).unwrap();
            assert!(!r.subject.is_empty() && !r.text.is_empty() && r.html.contains("<html"));
        }
    }

    #[test]
    fn html_parts_escape_variables_and_text_parts_keep_them() {
        let vars = json!({"name": "<script>x</script>", "title": "Rent & co", "due_date": "2026-12-01"});
        let r = render("bill_reminder", &vars).unwrap();
        assert!(r.html.contains("&lt;script&gt;") && !r.html.contains("<script>"));
        assert!(r.html.contains("Rent &amp; co"));
        assert!(r.text.contains("<script>x</script>"));
        assert_eq!(r.subject, "Reminder: Rent & co is due on 2026-12-01");
    }

    #[test]
    fn a_missing_variable_is_named() {
        let err = render("password_reset", &json!({"name": "Ada", "reset_url": "https://x"})).unwrap_err();
        assert_eq!(err.field(), "vars.expires_minutes");
        assert!(matches!(render("nope", &json!({})), Err(TemplateError::Unknown(_))));
        assert_eq!(render("low_balance", &json!([])), Err(TemplateError::NotAnObject));
    }

    #[test]
    fn a_subject_cannot_carry_a_line_break() {
        let vars = json!({"name": "A", "title": "x\r\nBcc: evil@example.com", "due_date": "d"});
        assert!(!render("bill_reminder", &vars).unwrap().subject.contains('\n'));
    }
}

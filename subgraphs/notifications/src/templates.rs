//! Templates per workflow, channel part and locale, rendered with minijinja. Every template is
//! rendered once at start with its workflow's sample variables in strict-undefined mode, so a
//! typo in a template or a variable the workflow does not declare stops the process at start.

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

use crate::workflows::WORKFLOWS;

/// Parts of a notification: email subject, text and HTML bodies; in-app title and body.
pub const PARTS: &[&str] = &["subject.txt", "text.txt", "html.html", "title.txt", "body.txt"];

/// The locale every workflow has; others fall back to it.
pub const DEFAULT_LOCALE: &str = "en";

macro_rules! sources {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../templates/", $name)))),*]
    };
}

/// `<workflow>/<locale>/<part>` and its source.
const SOURCES: &[(&str, &str)] = sources![
    "auth.password_reset_requested/en/subject.txt",
    "auth.password_reset_requested/en/text.txt",
    "auth.password_reset_requested/en/html.html",
    "member.invited/en/subject.txt",
    "member.invited/en/text.txt",
    "member.invited/en/html.html",
    "member.invited/en/title.txt",
    "member.invited/en/body.txt",
    "member.invited/fr/subject.txt",
    "member.invited/fr/text.txt",
    "member.invited/fr/html.html",
    "member.invited/fr/title.txt",
    "member.invited/fr/body.txt",
    "member.joined/en/title.txt",
    "member.joined/en/body.txt",
    "role.changed/en/title.txt",
    "role.changed/en/body.txt",
    "member.removed/en/title.txt",
    "member.removed/en/body.txt",
    "webhook.endpoint_disabled/en/subject.txt",
    "webhook.endpoint_disabled/en/text.txt",
    "webhook.endpoint_disabled/en/html.html",
    "webhook.endpoint_disabled/en/title.txt",
    "webhook.endpoint_disabled/en/body.txt",
];

/// The loaded, checked templates.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Loads the built-in templates and checks each; the error names the template and the cause.
    pub fn load() -> Result<Self, String> {
        Self::from_sources(SOURCES)
    }

    /// Loads and checks `sources` (`<workflow>/<locale>/<part>`, source).
    pub fn from_sources(sources: &[(&'static str, &'static str)]) -> Result<Self, String> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(false);
        for (name, source) in sources {
            env.add_template(name, source).map_err(|e| format!("template {name}: {e:#}"))?;
        }
        let templates = Self { env };
        for (name, _) in sources {
            templates.check(name)?;
        }
        Ok(templates)
    }

    fn check(&self, name: &str) -> Result<(), String> {
        let mut parts = name.splitn(3, '/');
        let (workflow, _locale, part) = (parts.next(), parts.next(), parts.next());
        let workflow = WORKFLOWS
            .iter()
            .find(|w| Some(w.key) == workflow)
            .ok_or_else(|| format!("template {name}: no workflow {}", workflow.unwrap_or_default()))?;
        if !part.is_some_and(|p| PARTS.contains(&p)) {
            return Err(format!("template {name}: the part must be one of {}", PARTS.join(", ")));
        }
        let template = self.env.get_template(name).map_err(|e| format!("template {name}: {e:#}"))?;
        template.render((workflow.sample)()).map_err(|e| format!("template {name}: {e:#}"))?;
        Ok(())
    }

    /// Renders `part` of `workflow` in `locale` (its language, then English); `None` when the
    /// workflow has no such part.
    pub fn render(
        &self,
        workflow: &str,
        locale: &str,
        part: &str,
        data: &Value,
    ) -> Option<Result<String, String>> {
        let language = locale.split(['-', '_']).next().unwrap_or(DEFAULT_LOCALE);
        let template = [locale, language, DEFAULT_LOCALE]
            .iter()
            .find_map(|l| self.env.get_template(&format!("{workflow}/{l}/{part}")).ok())?;
        Some(
            template
                .render(data)
                .map(|s| s.trim().to_owned())
                .map_err(|e| format!("{workflow}/{part}: {e:#}")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_templates_load() {
        let templates = Templates::load().expect("templates load");
        let data = serde_json::json!({
            "organization_name": "Acme", "role": "admin", "accept_url": "u", "expires_days": 7,
            "unsubscribe_url": null,
        });
        let subject = templates.render("member.invited", "fr-CA", "subject.txt", &data);
        assert_eq!(subject, Some(Ok("Rejoignez Acme sur PyAirtable".to_owned())));
        let english = templates.render("member.invited", "de", "subject.txt", &data);
        assert_eq!(english, Some(Ok("Join Acme on PyAirtable".to_owned())));
        assert_eq!(templates.render("member.joined", "en", "subject.txt", &data), None);
    }

    #[test]
    fn an_undeclared_variable_fails_loading_with_the_template_named() {
        let bad = [("member.joined/en/title.txt", "Hello {{ organisation_name }}")];
        let err = Templates::from_sources(&bad).err().expect("refused");
        assert!(err.contains("member.joined/en/title.txt") && err.contains("undefined"), "{err}");
        let syntax = [("member.joined/en/body.txt", "{% if %}")];
        assert!(Templates::from_sources(&syntax).is_err());
        let unknown = [("no.such/en/title.txt", "x")];
        assert!(Templates::from_sources(&unknown).err().expect("refused").contains("no workflow"));
    }

    #[test]
    fn html_parts_are_escaped() {
        let templates = Templates::load().expect("templates load");
        let data = serde_json::json!({
            "organization_name": "<b>x</b>", "role": "member", "accept_url": "u", "expires_days": 7,
            "unsubscribe_url": null,
        });
        let html = templates.render("member.invited", "en", "html.html", &data).expect("part").expect("ok");
        assert!(html.contains("&lt;b&gt;x") && !html.contains("<b>"), "{html}");
    }
}

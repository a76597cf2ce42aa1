//! Channels that leave the platform: email through the kit's mailer, and SMS and push through an
//! HTTP provider adapter (an operator points its URL at a gateway that speaks this JSON).

use std::sync::Arc;
use std::time::Duration;

use pyairtable_kit::mail::{Email, Mailer};

/// A rendered message for one recipient.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Message {
    pub channel: &'static str,
    pub to: String,
    pub subject: String,
    pub text: String,
    #[serde(skip)]
    pub html: Option<String>,
    pub workflow: String,
}

/// Sends a message; the error is the reason recorded in the delivery log.
#[async_trait::async_trait]
pub trait Channel: Send + Sync + 'static {
    async fn send(&self, message: &Message) -> Result<(), String>;
}

/// Email through the kit's mailer (`.eml` outbox by default, SMTP when configured).
pub struct EmailChannel(pub Arc<dyn Mailer>);

#[async_trait::async_trait]
impl Channel for EmailChannel {
    async fn send(&self, message: &Message) -> Result<(), String> {
        let email = Email {
            to: message.to.clone(),
            subject: message.subject.clone(),
            text: message.text.clone(),
            html: message.html.clone(),
        };
        self.0.send(email).await.map_err(|e| e.to_string())
    }
}

/// A provider reached over HTTP: `POST <url>` with the message as JSON
/// (`{"channel","to","subject","text","workflow"}`); any 2xx is sent, anything else a failure.
pub struct HttpChannel {
    url: String,
    client: reqwest::Client,
}

impl HttpChannel {
    pub fn new(url: &str) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self { url: url.to_owned(), client })
    }
}

#[async_trait::async_trait]
impl Channel for HttpChannel {
    async fn send(&self, message: &Message) -> Result<(), String> {
        let answer = self.client.post(&self.url).json(message).send().await.map_err(|e| format!("{e}"))?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        let body = answer.text().await.unwrap_or_default();
        Err(format!("the provider answered {status}: {}", body.chars().take(200).collect::<String>()))
    }
}

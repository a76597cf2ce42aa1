//! Outgoing email: to an SMTP server when `SMTP_URL` is set, otherwise as `.eml` files in an
//! outbox folder (`<data dir>/outbox`), one file per message, for development and tests.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::transport::smtp::Error as SmtpError;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::Config;

/// One message to one recipient.
#[derive(Debug, Clone)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("not an email address: {0}")]
    BadAddress(String),
    /// The server refused for good (5xx): retrying will not help.
    #[error("refused by the mail server: {0}")]
    Refused(String),
    /// A temporary failure (4xx, connection, timeout): worth retrying.
    #[error("temporary mail failure: {0}")]
    Transient(String),
    #[error("writing to the outbox: {0}")]
    Io(#[from] std::io::Error),
}

/// Sends email.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, email: Email) -> Result<(), MailError>;
}

/// The mailer `config` asks for.
pub fn from_config(config: &Config) -> Result<Arc<dyn Mailer>, MailError> {
    let from: Mailbox =
        config.mail_from.parse().map_err(|_| MailError::BadAddress(config.mail_from.clone()))?;
    Ok(match &config.smtp_url {
        Some(url) => Arc::new(SmtpMailer::new(url.expose(), from)?),
        None => Arc::new(OutboxMailer::new(config.data_dir.join("outbox"), from)),
    })
}

fn message(from: &Mailbox, email: Email) -> Result<Message, MailError> {
    let to: Mailbox = email.to.parse().map_err(|_| MailError::BadAddress(email.to.clone()))?;
    let builder = Message::builder().from(from.clone()).to(to).subject(email.subject);
    let built = match email.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(email.text, html)),
        None => builder.header(ContentType::TEXT_PLAIN).body(email.text),
    };
    built.map_err(|e| MailError::BadAddress(e.to_string()))
}

/// Writes each message to `<dir>/<unix millis>-<uuid>.eml`, atomically (temporary file, then
/// rename), so a reader never sees half a message and names sort by time.
pub struct OutboxMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl OutboxMailer {
    pub fn new(dir: PathBuf, from: Mailbox) -> Self {
        Self { dir, from }
    }
}

#[async_trait::async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, email: Email) -> Result<(), MailError> {
        let message = message(&self.from, email)?;
        tokio::fs::create_dir_all(&self.dir).await?;
        let name = format!("{:013}-{}", chrono::Utc::now().timestamp_millis(), uuid::Uuid::now_v7().simple());
        let temporary = self.dir.join(format!(".{name}.tmp"));
        tokio::fs::write(&temporary, message.formatted()).await?;
        tokio::fs::rename(&temporary, self.dir.join(format!("{name}.eml"))).await?;
        Ok(())
    }
}

/// Sends through an SMTP server, with pooled connections. `SMTP_URL` follows lettre's `from_url`:
/// `smtp://host:port` is plain (a local catcher), `smtp://host:587?tls=required` upgrades with
/// STARTTLS, `smtps://host:465` is TLS from the first byte; `user:password@` logs in.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    pub fn new(url: &str, from: Mailbox) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Transient(format!("SMTP_URL: {e}")))?
            .timeout(Some(Duration::from_secs(15)))
            .build();
        Ok(Self { transport, from })
    }
}

#[async_trait::async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: Email) -> Result<(), MailError> {
        let message = message(&self.from, email)?;
        self.transport.send(message).await.map(|_| ()).map_err(classify)
    }
}

fn classify(err: SmtpError) -> MailError {
    if err.is_permanent() {
        MailError::Refused(err.to_string())
    } else {
        MailError::Transient(err.to_string())
    }
}
